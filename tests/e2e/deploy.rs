//! The deployment files: the NixOS module evaluates to the expected service (with a small stub
//! of nixpkgs' `lib`, since nixpkgs itself is not available offline), and the systemd units
//! name a real command line.

use std::path::Path;
use std::process::Command;

#[test]
#[ignore = "needs nix-instantiate (nix-bin)"]
fn the_nixos_module_builds_the_watch_service() {
    let module = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/nixos/herald-watch.nix");
    let expr = format!(
        r#"
let
  lib = rec {{
    mkEnableOption = d: {{ _type = "option"; default = false; description = d; }};
    mkOption = a: a // {{ _type = "option"; }};
    types = {{ package = "package"; str = "str"; path = "path"; listOf = t: "listOf " + t; }};
    literalExpression = t: {{ _type = "literalExpression"; text = t; }};
    mkIf = cond: v: if cond then v else {{ }};
    concatMap = f: l: builtins.concatLists (map f l);
    escapeShellArg = s: "'" + builtins.replaceStrings [ "'" ] [ "'\\''" ] (toString s) + "'";
    escapeShellArgs = l: builtins.concatStringsSep " " (map escapeShellArg l);
  }};
  pkgs = {{ writeShellScript = name: text: "/nix/store/" + name + ":" + text; git = "git"; }};
  cfg = {{
    enable = true; package = "/nix/store/herald"; servers = [ "192.0.2.53" "198.51.100.53:53" ];
    resolvers = [ "127.0.0.53" ]; zone = "fleet.example.net"; node = "n1";
    trustAnchor = "/etc/anchor.key"; interval = "60s"; maxAge = "8d";
    exec = "nixos-rebuild switch --flake \"git+https://x?rev=$HERALD_COMMIT\"";
  }};
  config = {{
    services.herald-watch = cfg; networking.hostName = "n1";
    system.build.nixos-rebuild = "nixos-rebuild"; nix.package = "nix";
  }};
  m = import {} {{ inherit config lib pkgs; }};
  s = m.config.systemd.services.herald-watch;
in {{ exec = s.serviceConfig.ExecStart; kill = s.serviceConfig.KillMode; node = m.options.services.herald-watch.node.default; }}
"#,
        module.display()
    );
    let out = Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json", "-E", &expr])
        .output()
        .expect("nix-instantiate runs (apt-get install nix-bin)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let exec = v["exec"].as_str().unwrap();
    for part in [
        "'/nix/store/herald/bin/herald' 'watch' '--zone' 'fleet.example.net' '--node' 'n1'",
        "'--trust-anchor' '/etc/anchor.key' '--state' '/var/lib/herald-watch/state.json'",
        "'--server' '192.0.2.53' '--server' '198.51.100.53:53' '--resolver' '127.0.0.53'",
        // The hook is a script, so $HERALD_COMMIT reaches it unexpanded.
        "'--exec' '/nix/store/herald-watch-hook:nixos-rebuild switch --flake \"git+https://x?rev=$HERALD_COMMIT\"'",
    ] {
        assert!(exec.contains(part), "{part:?} missing from {exec}");
    }
    assert_eq!(v["kill"], "mixed");
    assert_eq!(v["node"], "n1");
}

#[test]
fn the_systemd_units_run_real_commands() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/systemd");
    let watch = std::fs::read_to_string(dir.join("herald-watch.service")).unwrap();
    let serve = std::fs::read_to_string(dir.join("herald.service")).unwrap();
    for (unit, text, sub) in [
        ("herald-watch.service", &watch, "watch"),
        ("herald.service", &serve, "serve"),
    ] {
        let exec: String = text
            .lines()
            .skip_while(|l| !l.starts_with("ExecStart="))
            .take_while(|l| l.starts_with("ExecStart=") || l.starts_with("    "))
            .map(|l| {
                l.trim_start_matches("ExecStart=")
                    .trim_end_matches('\\')
                    .trim()
            })
            .collect::<Vec<_>>()
            .join(" ");
        let args: Vec<&str> = exec
            .split_whitespace()
            .skip(1)
            .map(|a| if a == "%l" { "node1" } else { a })
            .collect();
        assert_eq!(args[0], sub, "{unit}");
        // clap accepts the flags: --help after them parses everything but runs nothing.
        let out = Command::new(env!("CARGO_BIN_EXE_herald"))
            .args(&args)
            .arg("--help")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{unit}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(watch.contains("KillMode=mixed"));
}
