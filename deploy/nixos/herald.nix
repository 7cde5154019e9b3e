# NixOS module for the Herald server: `herald serve` on port 53 as a hardened systemd service
# (the same hardening as deploy/systemd/herald.service).
#
#   imports = [ ./herald.nix ];
#   services.herald = {
#     enable = true;
#     package = herald;                                   # a package with bin/herald
#     openFirewall = true;                                # UDP and TCP of the DNS port(s)
#     zones."fleet.example.net".file = ./fleet.example.net.zone;
#     zones."lab.example.net".text = ''
#       $ORIGIN lab.example.net.
#       $TTL 3600
#       @   IN SOA ns1 hostmaster 1 3600 900 1209600 60
#           IN NS  ns1
#       ns1 IN A   192.0.2.53
#     '';
#     # Secrets: paths on the machine, as strings, so they never enter the Nix store.
#     adminTokenFile = "/run/keys/herald-admin-token";
#     tsigKeyFiles."xfr.example." = "/run/keys/xfr.example.key";
#     cookieSecretFile = "/run/keys/herald-cookie";       # 32 hex digits, shared by an anycast set
#     # Everything else of deploy/herald.toml, as Nix values.
#     settings = {
#       tsig-key = [ { name = "xfr.example."; algorithm = "hmac-sha256"; } ];  # secret-file: filled in
#       notify = [ { address = "192.0.2.11"; key = "xfr.example."; } ];
#       zone."fleet.example.net" = { algorithm = 15; node-ttl = 60; };
#     };
#   };
#
# The service's user is allocated on each start (DynamicUser); its data (store, signing keys)
# is /var/lib/herald. Secret files are read by systemd as root and handed to the service
# under /run/credentials/herald.service/ (LoadCredential=), where the configuration names
# them. Systemd newer than 252 may hand them over with mode 0440 (an ACL); Herald accepts
# that under $CREDENTIALS_DIRECTORY.
#
# A change of the settings, the zones or the package changes the unit, and nixos-rebuild
# restarts it; `systemctl reload herald` (SIGHUP) reads the configuration and zones again
# without a restart.
{ config, lib, pkgs, ... }:

let
  cfg = config.services.herald;
  settingsFormat = pkgs.formats.toml { };

  # Where systemd puts the service's credentials (LoadCredential=).
  credentials = "/run/credentials/herald.service";

  # One <zone>.zone per zone, as Herald reads a zones directory.
  zonesDir = pkgs.linkFarm "herald-zones" (lib.mapAttrsToList
    (name: zone: {
      name = "${name}.zone";
      path = if zone.file != null then zone.file else pkgs.writeText "${name}.zone" zone.text;
    })
    cfg.zones);

  # A [[tsig-key]] whose secret is in tsigKeyFiles gets that credential as its secret-file
  # (unless it names one itself).
  withSecret = key:
    lib.optionalAttrs (cfg.tsigKeyFiles ? ${key.name}) { secret-file = "${credentials}/${key.name}"; }
    // key;

  # The module's defaults, then the settings given (a key given replaces the default), then
  # what the module must decide: the credential paths.
  settings =
    {
      version = 1;
      data = "/var/lib/herald";
      dns = [ "0.0.0.0:53" "[::]:53" ];
      api = "127.0.0.1:8053";
    }
    // lib.optionalAttrs (cfg.zones != { }) { zones-dir = "${zonesDir}"; }
    // cfg.settings
    // lib.optionalAttrs (cfg.adminTokenFile != null) { admin-token-file = "${credentials}/admin-token"; }
    // lib.optionalAttrs (cfg.cookieSecretFile != null) { cookie-secret-file = "${credentials}/cookie-secret"; }
    // lib.optionalAttrs (cfg.cookieStagingSecretFile != null) {
      cookie-staging-secret-file = "${credentials}/cookie-staging-secret";
    }
    // lib.optionalAttrs (cfg.settings ? tsig-key) { tsig-key = map withSecret cfg.settings.tsig-key; };

  configFile = settingsFormat.generate "herald.toml" settings;

  # ID:SOURCE, as LoadCredential= takes them.
  loadCredentials =
    lib.optional (cfg.adminTokenFile != null) "admin-token:${cfg.adminTokenFile}"
    ++ lib.optional (cfg.cookieSecretFile != null) "cookie-secret:${cfg.cookieSecretFile}"
    ++ lib.optional (cfg.cookieStagingSecretFile != null) "cookie-staging-secret:${cfg.cookieStagingSecretFile}"
    ++ lib.mapAttrsToList (name: path: "${name}:${path}") cfg.tsigKeyFiles;

  # The ports of the DNS addresses ("0.0.0.0:53", "[::]:53").
  dnsPorts = lib.unique (map (address: lib.toInt (lib.last (lib.splitString ":" address))) settings.dns);

  tsigKeyNames = map (key: key.name) (settings.tsig-key or [ ]);
in
{
  options.services.herald = {
    enable = lib.mkEnableOption "Herald, the authoritative DNS server for fleet configuration commits";

    package = lib.mkOption {
      type = lib.types.package;
      description = "The package that provides bin/herald.";
    };

    settings = lib.mkOption {
      type = settingsFormat.type;
      default = { };
      example = lib.literalExpression ''
        {
          dns = [ "192.0.2.53:53" "[2001:db8::53]:53" ];
          allow-transfer = [ "192.0.2.12/32" ];
          tsig-key = [ { name = "xfr.example."; algorithm = "hmac-sha256"; } ];
          zone."fleet.example.net".denial = "nsec3";
        }
      '';
      description = ''
        Herald's configuration file (`herald serve --config`) as Nix values, with the keys of
        deploy/herald.toml. The module sets `version = 1`, `data = "/var/lib/herald"`,
        `dns = [ "0.0.0.0:53" "[::]:53" ]`, `api = "127.0.0.1:8053"` and, when `zones` is
        not empty, `zones-dir`; a key given here replaces the module's. `admin-token-file`
        and the `secret-file` of each `tsig-key` named in `tsigKeyFiles` are set by the
        module. Never put secrets here: the file is in the Nix store.
      '';
    };

    zones = lib.mkOption {
      type = lib.types.attrsOf (lib.types.submodule {
        options = {
          text = lib.mkOption {
            type = lib.types.nullOr lib.types.lines;
            default = null;
            description = "The zone file's text (RFC 1035).";
          };
          file = lib.mkOption {
            type = lib.types.nullOr lib.types.path;
            default = null;
            description = "The zone file.";
          };
        };
      });
      default = { };
      example = lib.literalExpression ''{ "fleet.example.net".file = ./fleet.example.net.zone; }'';
      description = ''
        The zones Herald serves, by name, each from `text` or `file` (one of them). They
        become the directory of `<name>.zone` files that `zones-dir` names. Leave this
        empty to set `settings.zones-dir` yourself.
      '';
    };

    adminTokenFile = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = null;
      example = "/run/keys/herald-admin-token";
      description = ''
        A file on the machine holding the admin token (16 characters or more), readable by
        root. A string, not a Nix path, so the token is not copied into the store. Without
        it, Herald generates a token into /var/lib/herald/admin.token on first start.
      '';
    };

    cookieSecretFile = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = null;
      example = "/run/keys/herald-cookie";
      description = ''
        A file on the machine holding the DNS cookie secret (32 hex digits, `openssl rand -hex
        16`), readable by root, the same on every server of an anycast set. Without it, a
        random secret is drawn at each start.
      '';
    };

    cookieStagingSecretFile = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = null;
      description = ''
        The next cookie secret, accepted beside the active one while a rollover reaches every
        server of the set (`systemctl reload herald` reads both again).
      '';
    };

    tsigKeyFiles = lib.mkOption {
      type = lib.types.attrsOf lib.types.str;
      default = { };
      example = { "xfr.example." = "/run/keys/xfr.example.key"; };
      description = ''
        The secret files of the TSIG keys (the base64 secret, as `tsig-keygen` prints it), by
        the key's name in `settings.tsig-key`; readable by root, as strings (not Nix paths).
      '';
    };

    openFirewall = lib.mkOption {
      type = lib.types.bool;
      default = false;
      description = "Open the DNS port(s) of `settings.dns` for UDP and TCP in the firewall.";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = lib.all (zone: (zone.text == null) != (zone.file == null)) (lib.attrValues cfg.zones);
        message = "services.herald.zones: give each zone either text or file.";
      }
      {
        assertion = settings ? zones-dir;
        message = "services.herald: give zones, or settings.zones-dir.";
      }
      {
        assertion = settings.data == "/var/lib/herald" || lib.hasPrefix "/var/lib/herald/" settings.data;
        message = "services.herald.settings.data must be in /var/lib/herald, the one directory the service may write.";
      }
      {
        assertion = lib.all (path: lib.hasPrefix "/" path)
          (lib.optional (cfg.adminTokenFile != null) cfg.adminTokenFile
            ++ lib.optional (cfg.cookieSecretFile != null) cfg.cookieSecretFile
            ++ lib.optional (cfg.cookieStagingSecretFile != null) cfg.cookieStagingSecretFile
            ++ lib.attrValues cfg.tsigKeyFiles);
        message = "services.herald: adminTokenFile, cookieSecretFile, cookieStagingSecretFile and tsigKeyFiles are absolute paths on the machine.";
      }
      {
        assertion = lib.all (id: !(cfg.tsigKeyFiles ? ${id})) [ "admin-token" "cookie-secret" "cookie-staging-secret" ];
        message = "services.herald.tsigKeyFiles: admin-token, cookie-secret and cookie-staging-secret are the module's own credentials; name the key otherwise.";
      }
      {
        assertion = cfg.cookieStagingSecretFile == null || cfg.cookieSecretFile != null;
        message = "services.herald.cookieStagingSecretFile needs cookieSecretFile.";
      }
      {
        assertion = lib.all (name: lib.elem name tsigKeyNames) (lib.attrNames cfg.tsigKeyFiles);
        message = "services.herald.tsigKeyFiles: each name must be the name of a key in settings.tsig-key.";
      }
      {
        assertion = lib.all (key: key ? secret-file) (settings.tsig-key or [ ]);
        message = "services.herald.settings.tsig-key: each key needs its secret in tsigKeyFiles (or a secret-file).";
      }
    ];

    networking.firewall = lib.mkIf cfg.openFirewall {
      allowedUDPPorts = dnsPorts;
      allowedTCPPorts = dnsPorts;
    };

    systemd.services.herald = {
      description = "Herald: authoritative DNS for fleet configuration commits";
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ];
      after = [ "network-online.target" ];
      serviceConfig = {
        # READY=1 once DNS and the API are bound; STOPPING=1 on stop.
        Type = "notify";
        ExecStart = "${cfg.package}/bin/herald serve --config ${configFile}";
        # SIGHUP: the configuration and the zone files read again while serving.
        ExecReload = "${pkgs.coreutils}/bin/kill -HUP $MAINPID";

        # A user allocated for each run; /var/lib/herald (the store, the signing keys) is the
        # one directory it may write.
        DynamicUser = true;
        StateDirectory = "herald";
        StateDirectoryMode = "0700";
        # Secrets read by systemd as root, handed over in /run/credentials/herald.service/.
        LoadCredential = loadCredentials;

        # Port 53 without root, and no other capability ever.
        AmbientCapabilities = [ "CAP_NET_BIND_SERVICE" ];
        CapabilityBoundingSet = [ "CAP_NET_BIND_SERVICE" ];
        NoNewPrivileges = true;

        ProtectSystem = "strict";
        ProtectHome = true;
        PrivateTmp = true;
        PrivateDevices = true;
        PrivateMounts = true;
        UMask = "0077";
        ProtectProc = "invisible";
        ProcSubset = "pid";
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectKernelLogs = true;
        ProtectControlGroups = true;
        ProtectClock = true;
        ProtectHostname = true;

        # IPv4 and IPv6 for DNS and the API; AF_UNIX for sd_notify.
        RestrictAddressFamilies = [ "AF_INET" "AF_INET6" "AF_UNIX" ];
        RestrictNamespaces = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        LockPersonality = true;
        # Herald (Rust, tokio, SQLite) generates no code.
        MemoryDenyWriteExecute = true;
        SystemCallArchitectures = "native";
        SystemCallFilter = [ "@system-service" "~@privileged @resources" ];
        SystemCallErrorNumber = "EPERM";

        # SIGTERM stops Herald cleanly (API requests get 5 s; acknowledged writes are on disk).
        KillSignal = "SIGTERM";
        TimeoutStopSec = 20;
        Restart = "on-failure";
        RestartSec = 5;
        LimitNOFILE = 65536;
      };
    };
  };
}
