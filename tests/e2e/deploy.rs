//! The deployment files: the NixOS modules evaluate to the expected services (with a small
//! stub of nixpkgs' `lib`, since nixpkgs itself is not available offline), the systemd units
//! name a real command line and pass `systemd-analyze`, and the server's unit and module hand
//! Herald a configuration it accepts and serves with.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use crate::harness::{ask, repo_zones, wait_for};

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
    types = {{ package = "package"; str = "str"; path = "path"; listOf = t: "listOf " + t; nullOr = t: "nullOr " + t; }};
    literalExpression = t: {{ _type = "literalExpression"; text = t; }};
    mkIf = cond: v: if cond then v else {{ }};
    optional = c: v: if c then [ v ] else [ ];
    concatMap = f: l: builtins.concatLists (map f l);
    escapeShellArg = s: "'" + builtins.replaceStrings [ "'" ] [ "'\\''" ] (toString s) + "'";
    escapeShellArgs = l: builtins.concatStringsSep " " (map escapeShellArg l);
  }};
  pkgs = {{ writeShellScript = name: text: "/nix/store/" + name + ":" + text; git = "git"; }};
  cfg = {{
    enable = true; package = "/nix/store/herald"; servers = [ "192.0.2.53" "198.51.100.53:53" ];
    resolvers = [ "127.0.0.53" ]; zone = "fleet.example.net"; node = "n1";
    trustAnchor = "/etc/anchor.key"; interval = "60s"; hookTimeout = "20m"; maxAge = "8d";
    reportKeyFile = "/run/keys/herald-report"; reportEvery = "30m";
    exec = "nixos-rebuild switch --flake \"git+https://x?rev=$HERALD_COMMIT\"";
  }};
  config = {{
    services.herald-watch = cfg; networking.hostName = "n1";
    system.build.nixos-rebuild = "nixos-rebuild"; nix.package = "nix";
  }};
  m = import {} {{ inherit config lib pkgs; }};
  s = m.config.systemd.services.herald-watch;
in {{ exec = s.serviceConfig.ExecStart; kill = s.serviceConfig.KillMode; creds = s.serviceConfig.LoadCredential; node = m.options.services.herald-watch.node.default; }}
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
        "'--interval' '60s' '--hook-timeout' '20m'",
        // The report key comes in as a credential, never through the Nix store.
        "'--report-key' '%d/report-key' '--report-every' '30m'",
        // The hook is a script, so $HERALD_COMMIT reaches it unexpanded.
        "'--exec' '/nix/store/herald-watch-hook:nixos-rebuild switch --flake \"git+https://x?rev=$HERALD_COMMIT\"'",
    ] {
        assert!(exec.contains(part), "{part:?} missing from {exec}");
    }
    assert_eq!(v["kill"], "mixed");
    assert_eq!(v["node"], "n1");
    assert_eq!(
        v["creds"],
        serde_json::json!(["report-key:/run/keys/herald-report"])
    );
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

/// The `[Service]` settings of a unit file, in order: (key, value), comments left out.
fn service_settings(unit: &str) -> Vec<(String, String)> {
    unit.lines()
        .skip_while(|l| l.trim() != "[Service]")
        .skip(1)
        .take_while(|l| !l.starts_with('['))
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

fn server_unit() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/systemd/herald.service"),
    )
    .unwrap()
}

/// Where systemd hands the server's credentials over (LoadCredential=).
const CREDENTIALS: &str = "/run/credentials/herald.service";

/// base64 of 28 bytes: a TSIG secret.
const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ==";

/// A credential as systemd 252 writes it on its ramfs: the service user's, mode 0400.
fn credential(dir: &Path, id: &str) {
    let text = match id {
        "admin-token" => crate::harness::TOKEN,
        "cookie-secret" => "00112233445566778899aabbccddeeff",
        _ => SECRET,
    };
    let path = dir.join(id);
    std::fs::write(&path, format!("{text}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
}

fn config_check(config: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["config", "check", "--config"])
        .arg(config)
        .env_remove("HERALD_ADMIN_TOKEN")
        .output()
        .unwrap()
}

#[test]
fn the_server_unit_hands_over_the_secrets_its_configuration_names() {
    let unit = server_unit();
    let settings = service_settings(&unit);
    let get = |key: &str| -> Vec<&str> {
        settings
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    assert_eq!(get("Type"), ["notify"]);
    assert_eq!(get("DynamicUser"), ["yes"]);
    assert_eq!(get("StateDirectory"), ["herald"]);
    assert_eq!(get("CapabilityBoundingSet"), ["CAP_NET_BIND_SERVICE"]);
    assert_eq!(get("AmbientCapabilities"), ["CAP_NET_BIND_SERVICE"]);
    // SIGHUP reloads.
    assert_eq!(get("ExecReload"), ["/bin/kill -HUP $MAINPID"]);
    assert_eq!(
        get("ExecStart"),
        ["/usr/local/bin/herald serve --config /etc/herald/herald.toml"]
    );

    // The configuration the unit's comment shows, with the credentials it loads.
    let example: String = unit
        .lines()
        .filter_map(|l| l.strip_prefix("#        "))
        .map(|l| format!("{l}\n"))
        .collect();
    let ids: Vec<&str> = get("LoadCredential")
        .iter()
        .map(|c| c.split_once(':').unwrap().0)
        .collect();
    assert_eq!(ids, ["admin-token", "xfr.example.key"]);
    let named: Vec<&str> = example
        .match_indices(&format!("{CREDENTIALS}/"))
        .map(|(at, m)| {
            let rest = &example[at + m.len()..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect();
    assert_eq!(
        named, ids,
        "the example names exactly the loaded credentials"
    );

    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("credentials");
    std::fs::create_dir(&creds).unwrap();
    for id in &ids {
        credential(&creds, id);
    }
    let config = dir.path().join("herald.toml");
    // The example's zones directory, here as copies of the repository's.
    let zones = crate::harness::copy_zones(dir.path());
    std::fs::write(
        &config,
        example
            .replace(CREDENTIALS, creds.to_str().unwrap())
            .replace("/etc/herald/zones", zones.to_str().unwrap()),
    )
    .unwrap();
    let o = config_check(&config);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let effective: toml::Table = toml::from_str(&String::from_utf8_lossy(&o.stdout)).unwrap();
    assert_eq!(effective["zones-dir"].as_str(), zones.to_str());
    assert_eq!(effective["dns"].as_array().unwrap().len(), 2);
}

#[test]
#[ignore = "needs systemd-analyze"]
fn the_server_unit_passes_systemd_analyze() {
    // The unit as installed, with ExecStart naming a binary that exists here.
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("herald.service");
    std::fs::write(
        &unit,
        server_unit().replace("/usr/local/bin/herald", env!("CARGO_BIN_EXE_herald")),
    )
    .unwrap();
    let analyze = |args: &[&str]| {
        Command::new("systemd-analyze")
            .args(args)
            .arg(&unit)
            .output()
            .expect("systemd-analyze runs (apt-get install systemd)")
    };
    let o = analyze(&["verify", "--man=no"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    // Unknown keys and bad values are warnings (exit 0) naming the unit: none may appear.
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("herald.service"))
        .collect();
    assert!(o.status.success() && complaints.is_empty(), "{stderr}");

    // The exposure score of the hardening: at most 2.0 ("OK"; the unit scores 1.4 on
    // systemd 252). A change that weakens it fails here.
    let o = analyze(&["security", "--offline=yes", "--threshold=20"]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        stdout.contains("Overall exposure level for herald.service"),
        "{stdout}"
    );
}

/// A stub of the parts of nixpkgs' `lib` and `pkgs` that deploy/nixos/herald.nix uses. The
/// files Nix would write are strings instead: `/nix/store/<name>:<content>`, with JSON for
/// the TOML file and the link farm, for the test to write out.
const NIX_STUB: &str = r#"
  lib = rec {
    mkEnableOption = d: { _type = "option"; default = false; description = d; };
    mkOption = a: a // { _type = "option"; };
    types = {
      package = "package"; str = "str"; path = "path"; bool = "bool"; lines = "lines";
      nullOr = t: "nullOr"; listOf = t: "listOf"; attrsOf = t: "attrsOf"; submodule = m: "submodule";
    };
    literalExpression = t: { _type = "literalExpression"; text = t; };
    mkIf = cond: v: if cond then v else { };
    optional = c: v: if c then [ v ] else [ ];
    optionalAttrs = c: a: if c then a else { };
    mapAttrsToList = f: a: map (n: f n a.${n}) (builtins.attrNames a);
    attrNames = builtins.attrNames;
    attrValues = builtins.attrValues;
    all = builtins.all;
    elem = builtins.elem;
    hasPrefix = p: s: builtins.substring 0 (builtins.stringLength p) s == p;
    unique = builtins.foldl' (acc: x: if builtins.elem x acc then acc else acc ++ [ x ]) [ ];
    splitString = sep: s: builtins.filter builtins.isString (builtins.split sep s);
    last = l: builtins.elemAt l (builtins.length l - 1);
    toInt = builtins.fromJSON;
  };
  pkgs = {
    formats.toml = { }: {
      type = "toml";
      generate = name: value: "/nix/store/" + name + ":" + builtins.toJSON value;
    };
    writeText = name: text: "/nix/store/" + name + ":" + text;
    linkFarm = name: entries: "/nix/store/" + name + ":" + builtins.toJSON entries;
    coreutils = "/nix/store/coreutils";
  };
"#;

/// The tokens of a setting, so that `SystemCallFilter=@system-service` and
/// `SystemCallFilter=~@privileged @resources` equal `[ "@system-service" "~@privileged @resources" ]`.
fn nix_tokens(v: &serde_json::Value) -> Vec<String> {
    use serde_json::Value;
    match v {
        Value::Bool(b) => vec![if *b { "yes" } else { "no" }.to_owned()],
        Value::Number(n) => vec![n.to_string()],
        Value::String(s) => s.split_whitespace().map(str::to_owned).collect(),
        Value::Array(a) => a.iter().flat_map(nix_tokens).collect(),
        other => panic!("unexpected setting {other}"),
    }
}

#[test]
#[ignore = "needs nix-instantiate (nix-bin)"]
fn the_nixos_module_renders_a_configuration_herald_serves() {
    let module = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/nixos/herald.nix");
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path();
    // One zone from a file, one from text.
    let zone_file = tmp.join("example.test.zone");
    std::fs::copy(repo_zones().join("example.test.zone"), &zone_file).unwrap();
    let fleet = tmp.join("fleet.txt");
    std::fs::write(
        &fleet,
        "$ORIGIN fleet.example.\n$TTL 3600\n@ IN SOA ns1 hostmaster 1 3600 900 1209600 60\n  IN NS ns1\nns1 IN A 192.0.2.53\n",
    )
    .unwrap();
    let expr = r#"
let
@STUB@
  cfg = {
    enable = true; package = "/nix/store/herald"; openFirewall = true;
    zones = {
      "example.test" = { file = "@ZONE_FILE@"; text = null; };
      "fleet.example" = { file = null; text = builtins.readFile "@FLEET@"; };
    };
    adminTokenFile = "/run/keys/herald-admin-token";
    cookieSecretFile = "/run/keys/herald-cookie"; cookieStagingSecretFile = null;
    tsigKeyFiles = { "xfr.example." = "/run/keys/xfr.example.key"; };
    settings = {
      dns = [ "0.0.0.0:5353" "[::]:5353" ];
      allow-transfer = [ "192.0.2.12/32" ];
      tsig-key = [ { name = "xfr.example."; algorithm = "hmac-sha256"; } ];
      notify = [ { address = "192.0.2.11"; key = "xfr.example."; } ];
      zone."fleet.example" = { algorithm = 15; node-ttl = 300; };
    };
  };
  m = import @MODULE@ { config = { services.herald = cfg; }; inherit lib pkgs; };
  s = m.config.systemd.services.herald;
in {
  service = s.serviceConfig;
  inherit (s) wantedBy after;
  firewall = m.config.networking.firewall;
  failed = map (a: a.message) (builtins.filter (a: !a.assertion) m.config.assertions);
}
"#
    .replace("@STUB@", NIX_STUB)
    .replace("@ZONE_FILE@", zone_file.to_str().unwrap())
    .replace("@FLEET@", fleet.to_str().unwrap())
    .replace("@MODULE@", module.to_str().unwrap());
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
    assert_eq!(v["failed"], serde_json::json!([]), "assertions failed");
    assert_eq!(v["wantedBy"], serde_json::json!(["multi-user.target"]));
    assert_eq!(v["firewall"]["allowedUDPPorts"], serde_json::json!([5353]));
    assert_eq!(v["firewall"]["allowedTCPPorts"], serde_json::json!([5353]));
    let service = v["service"].as_object().unwrap();
    assert_eq!(service["Type"], "notify");
    assert_eq!(service["DynamicUser"], true);
    assert_eq!(service["StateDirectory"], "herald");
    assert!(
        service["ExecReload"]
            .as_str()
            .is_some_and(|r| r.ends_with("kill -HUP $MAINPID")),
        "{service:?}"
    );
    assert_eq!(
        service["LoadCredential"],
        serde_json::json!([
            "admin-token:/run/keys/herald-admin-token",
            "cookie-secret:/run/keys/herald-cookie",
            "xfr.example.:/run/keys/xfr.example.key"
        ])
    );
    // The same hardening as deploy/systemd/herald.service, setting for setting.
    let mut unit: Vec<(String, Vec<String>)> = Vec::new();
    for (k, v) in service_settings(&server_unit()) {
        // Commands name their binaries by path, which differs between the two.
        if ["ExecStart", "ExecReload", "LoadCredential"].contains(&k.as_str()) {
            continue;
        }
        let tokens = v.split_whitespace().map(str::to_owned);
        match unit.iter_mut().find(|(u, _)| *u == k) {
            Some((_, t)) => t.extend(tokens),
            None => unit.push((k, tokens.collect())),
        }
    }
    for (k, tokens) in &unit {
        let nix = service.get(k).map(nix_tokens);
        assert_eq!(nix.as_ref(), Some(tokens), "{k} differs from the unit's");
    }
    let extra: Vec<&String> = service
        .keys()
        .filter(|k| !["ExecStart", "ExecReload", "LoadCredential"].contains(&k.as_str()))
        .filter(|k| !unit.iter().any(|(u, _)| u == *k))
        .collect();
    assert!(extra.is_empty(), "not in the unit: {extra:?}");

    // ExecStart runs `herald serve` on the rendered file.
    let exec = service["ExecStart"].as_str().unwrap();
    let (command, file) = exec.split_once(" --config ").unwrap();
    assert_eq!(command, "/nix/store/herald/bin/herald serve");
    let rendered = file.strip_prefix("/nix/store/herald.toml:").unwrap();

    // Write out what Nix would have: the credentials directory, the link farm of zones.
    let creds = tmp.join("credentials");
    std::fs::create_dir(&creds).unwrap();
    for id in ["admin-token", "cookie-secret", "xfr.example."] {
        credential(&creds, id);
    }
    let mut settings: serde_json::Value =
        serde_json::from_str(&rendered.replace(CREDENTIALS, creds.to_str().unwrap())).unwrap();
    assert_eq!(settings["version"], 1);
    assert_eq!(settings["data"], "/var/lib/herald");
    assert_eq!(settings["api"], "127.0.0.1:8053");
    assert_eq!(
        settings["admin-token-file"],
        creds.join("admin-token").to_str().unwrap()
    );
    assert_eq!(
        settings["tsig-key"][0]["secret-file"],
        creds.join("xfr.example.").to_str().unwrap()
    );
    assert_eq!(
        settings["cookie-secret-file"],
        creds.join("cookie-secret").to_str().unwrap()
    );
    let farm = settings["zones-dir"].as_str().unwrap();
    let entries: Vec<serde_json::Value> =
        serde_json::from_str(farm.strip_prefix("/nix/store/herald-zones:").unwrap()).unwrap();
    let zones = tmp.join("zones");
    let store = tmp.join("store");
    std::fs::create_dir(&zones).unwrap();
    std::fs::create_dir(&store).unwrap();
    let mut names = Vec::new();
    for entry in &entries {
        let name = entry["name"].as_str().unwrap();
        let path = entry["path"].as_str().unwrap();
        let target = match path.strip_prefix(&format!("/nix/store/{name}:")) {
            Some(text) => {
                std::fs::write(store.join(name), text).unwrap();
                store.join(name)
            }
            None => PathBuf::from(path),
        };
        std::os::unix::fs::symlink(&target, zones.join(name)).unwrap();
        names.push(name);
    }
    assert_eq!(names, ["example.test.zone", "fleet.example.zone"]);
    settings["zones-dir"] = zones.to_str().unwrap().into();
    settings["data"] = tmp.join("data").to_str().unwrap().into();
    let config = tmp.join("herald.toml");
    let toml_value = toml::Value::try_from(&settings).unwrap();
    std::fs::write(&config, toml::to_string(&toml_value).unwrap()).unwrap();

    let o = config_check(&config);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );

    // And serves: READY=1 to $NOTIFY_SOCKET once up, with the token from its credential and
    // both zones; STOPPING=1 and a clean exit on SIGTERM.
    let notify = UnixDatagram::bind(tmp.join("notify")).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["serve", "--config"])
        .arg(&config)
        .args(["--dns", "127.0.0.1:0", "--api", "127.0.0.1:0"])
        .env("NOTIFY_SOCKET", tmp.join("notify"))
        .env("RUST_LOG", "info")
        .env_remove("HERALD_ADMIN_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    {
        let log = log.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                log.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
    }
    let mut buf = [0u8; 256];
    let ready = notify.recv(&mut buf).map(|n| buf[..n].to_vec());
    if ready.as_deref().ok() != Some(&b"READY=1"[..]) {
        let _ = child.kill();
        let _ = child.wait();
        panic!("no READY=1 ({ready:?}):\n{}", log.lock().unwrap());
    }
    // Logged before READY=1 was sent; read back from stderr by the thread above.
    let addr = |what: &str| -> String {
        let marker = format!("listening for {what} on ");
        let mut found = None;
        wait_for(Duration::from_secs(10), &marker, || {
            let log = log.lock().unwrap();
            found = log.find(&marker).and_then(|at| {
                let line = log[at + marker.len()..].lines().next()?;
                Some(line.trim().to_owned())
            });
            found.is_some()
        });
        found.unwrap()
    };
    let (dns, api): (SocketAddr, String) = (addr("dns").parse().unwrap(), addr("api"));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut res = agent
        .get(&format!("http://{api}/v1/zones"))
        .header(
            "Authorization",
            &format!("Bearer {}", crate::harness::TOKEN),
        )
        .call()
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let body: serde_json::Value = res.body_mut().read_json().unwrap();
    let served: Vec<&str> = body["zones"]
        .as_array()
        .unwrap()
        .iter()
        .map(|z| z["zone"].as_str().unwrap())
        .collect();
    assert_eq!(served, ["example.test", "fleet.example"]);
    let soa = ask(dns, "fleet.example.", RecordType::SOA).expect("an answer");
    assert_eq!(soa.answers.len(), 1);
    assert!(
        log.lock().unwrap().contains(&format!(
            "admin token from {}",
            creds.join("admin-token").display()
        )),
        "{}",
        log.lock().unwrap()
    );

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let stopping = notify.recv(&mut buf).map(|n| buf[..n].to_vec());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("herald ignored SIGTERM:\n{}", log.lock().unwrap());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(stopping.as_deref().ok(), Some(&b"STOPPING=1"[..]));
    assert!(status.success(), "{status}:\n{}", log.lock().unwrap());
}
