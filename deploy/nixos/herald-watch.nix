# NixOS module for the Herald watcher: this machine asks Herald which configuration commit it
# should run and switches to it when the commit's seq rises.
#
#   imports = [ ./herald-watch.nix ];
#   services.herald-watch = {
#     enable = true;
#     package = herald;                      # a package with bin/herald
#     servers = [ "192.0.2.53" "198.51.100.53" ];
#     zone = "fleet.example.net";
#     trustAnchor = ./fleet-anchor.key;      # `herald key show --zone fleet.example.net`
#     exec = ''nixos-rebuild switch --flake "git+https://git.example.net/fleet?rev=$HERALD_COMMIT#$HERALD_NODE"'';
#     reportKeyFile = "/run/keys/herald-report";  # `herald key report --zone … --node …`; a secret
#   };
#
# The hook runs with HERALD_ZONE, HERALD_NODE, HERALD_COMMIT and HERALD_SEQ in its
# environment; the new seq is recorded only when it exits 0, and a failing hook is retried.
{ config, lib, pkgs, ... }:

let
  cfg = config.services.herald-watch;
  # The hook as a script, so that neither systemd nor Nix expands its $HERALD_* variables.
  hook = pkgs.writeShellScript "herald-watch-hook" cfg.exec;
  targets =
    lib.concatMap (s: [ "--server" s ]) cfg.servers
    ++ lib.concatMap (r: [ "--resolver" r ]) cfg.resolvers;
  # The report key reaches the service as a credential (%d is its credentials directory), so
  # it never enters the Nix store.
  report =
    if cfg.reportKeyFile == null then [ ]
    else [ "--report-key" "%d/report-key" "--report-every" cfg.reportEvery ];
in
{
  options.services.herald-watch = {
    enable = lib.mkEnableOption "the Herald watcher, which applies this node's configuration commit";

    package = lib.mkOption {
      type = lib.types.package;
      description = "The package that provides bin/herald.";
    };

    servers = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ ];
      example = [ "192.0.2.53" "198.51.100.53:53" ];
      description = "Authoritative servers (primaries, secondaries, anycast), as IP or IP:port, tried in order.";
    };

    resolvers = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ ];
      example = [ "127.0.0.53" ];
      description = "Recursive resolvers to ask after the servers; their answers are still validated locally.";
    };

    zone = lib.mkOption {
      type = lib.types.str;
      example = "fleet.example.net";
      description = "The zone that holds the nodes' records.";
    };

    node = lib.mkOption {
      type = lib.types.str;
      default = config.networking.hostName;
      defaultText = lib.literalExpression "config.networking.hostName";
      description = "This machine's node name in the zone (one DNS label).";
    };

    trustAnchor = lib.mkOption {
      type = lib.types.path;
      description = "File with the zone's DNSKEY and/or DS records, as `herald key show` prints them.";
    };

    interval = lib.mkOption {
      type = lib.types.str;
      default = "60s";
      description = "Time between checks, jittered by 10 percent.";
    };

    reportKeyFile = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = null;
      example = "/run/keys/herald-report";
      description = ''
        A file (outside the Nix store) holding this node's report key, as `herald key report`
        prints it; with it, the watcher reports each hook run's outcome to the servers.
      '';
    };

    reportEvery = lib.mkOption {
      type = lib.types.str;
      default = "1h";
      description = "While up to date, how often the applied state is reported again.";
    };

    hookTimeout = lib.mkOption {
      type = lib.types.str;
      default = "1h";
      description = ''
        A hook still running after this has its process group sent SIGTERM, then SIGKILL 10 s
        later, and counts as failed; the next pass acts on the newest commit (a rollback, say).
      '';
    };

    maxAge = lib.mkOption {
      type = lib.types.str;
      default = "8d";
      description = "Answers signed longer ago than this are stale and not acted on.";
    };

    exec = lib.mkOption {
      type = lib.types.str;
      example = lib.literalExpression ''
        '''nixos-rebuild switch --flake "git+https://git.example.net/fleet?rev=$HERALD_COMMIT#$HERALD_NODE"'''
      '';
      description = "Shell command run when the seq rises.";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = cfg.servers != [ ] || cfg.resolvers != [ ];
        message = "services.herald-watch needs at least one server or resolver.";
      }
    ];

    systemd.services.herald-watch = {
      description = "Herald watcher: apply this node's configuration commit when it changes";
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ];
      after = [ "network-online.target" ];
      # What the usual hook needs.
      path = [ config.system.build.nixos-rebuild config.nix.package pkgs.git ];
      serviceConfig = {
        ExecStart = lib.escapeShellArgs ([
          "${cfg.package}/bin/herald" "watch"
          "--zone" cfg.zone
          "--node" cfg.node
          "--trust-anchor" "${cfg.trustAnchor}"
          "--state" "/var/lib/herald-watch/state.json"
          "--interval" cfg.interval
          "--hook-timeout" cfg.hookTimeout
          "--max-age" cfg.maxAge
          "--exec" "${hook}"
        ] ++ targets ++ report);
        LoadCredential = lib.optional (cfg.reportKeyFile != null) "report-key:${cfg.reportKeyFile}";
        StateDirectory = "herald-watch";
        StateDirectoryMode = "0700";
        # Only herald gets SIGTERM on stop; it waits for a running hook to finish.
        KillMode = "mixed";
        TimeoutStopSec = "30min";
        Restart = "always";
        RestartSec = 30;
      };
    };
  };
}
