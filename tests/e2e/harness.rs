//! Starts the real `herald` binary on port 0 and talks to it over real sockets.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_net::client::{Client, ClientHandle};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::udp::UdpClientStream;
use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use serde_json::Value;

pub const TOKEN: &str = "e2e-admin-token-0123456789abcdef";
pub const SHA1: &str = "3f2a9c0d5e6b7a8f9e0d1c2b3a4f5e6d7c8b9a0f";
pub const SHA256: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// `herald serve` on free ports with these directories; the caller adds the rest.
pub fn serve_command(data: &Path, zones: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_herald"));
    cmd.args([
        "serve",
        "--dns",
        "127.0.0.1:0",
        "--api",
        "127.0.0.1:0",
        "--data",
    ])
    .arg(data)
    .arg("--zones")
    .arg(zones);
    cmd
}

/// The example zone shipped in the repository.
pub fn repo_zones() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("zones")
}

pub struct Server {
    child: Option<Child>,
    pub dns: SocketAddr,
    pub api: String,
    log: Arc<Mutex<String>>,
    agent: ureq::Agent,
    /// Every answer of the API to [`Server::call_as`], and what [`Server::drop`] looks for in
    /// it and in the log: the data directory's secrets and those given on the command line.
    answers: Mutex<String>,
    data: PathBuf,
    secrets: Vec<String>,
}

/// A reply of the API: status and JSON body (Null when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub json: Value,
}

impl Server {
    /// Starts `herald serve` on free ports with the admin token from the environment.
    pub fn start(data: &Path, zones: &Path) -> Self {
        Self::start_with(data, zones, Some(TOKEN), &[])
    }

    pub fn start_with(data: &Path, zones: &Path, token: Option<&str>, extra: &[&str]) -> Self {
        let mut cmd = serve_command(data, zones);
        cmd.args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        match token {
            Some(t) => cmd.env("HERALD_ADMIN_TOKEN", t),
            None => cmd.env_remove("HERALD_ADMIN_TOKEN"),
        };
        let mut child = cmd.spawn().expect("herald starts");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    log.lock().unwrap().push_str(&format!("{line}\n"));
                    for (kind, marker) in [
                        ("dns", "listening for dns on "),
                        ("api", "listening for api on "),
                    ] {
                        if let Some(at) = line.find(marker) {
                            let addr = line[at + marker.len()..].trim().to_owned();
                            let _ = tx.send((kind, addr));
                        }
                    }
                }
            });
        }
        let (mut dns, mut api) = (None, None);
        let deadline = Instant::now() + Duration::from_secs(20);
        while dns.is_none() || api.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(("dns", a)) => dns = Some(a.parse::<SocketAddr>().unwrap()),
                Ok((_, a)) => api = Some(a),
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("herald did not start:\n{}", log.lock().unwrap());
                }
            }
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Self {
            child: Some(child),
            dns: dns.unwrap(),
            api: format!("http://{}", api.unwrap()),
            log,
            agent,
            answers: Mutex::default(),
            data: data.to_owned(),
            secrets: command_line_secrets(token, extra),
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends `signal` (TERM, INT, KILL) and waits for the exit.
    pub fn signal(mut self, signal: &str) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{signal} failed");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("herald ignored SIG{signal}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Any request to the API with the admin token.
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        self.call_as(method, path, body, Some(TOKEN), &[])
    }

    pub fn call_as(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let url = format!("{}{path}", self.api);
        let mut req = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut res = self
            .agent
            .run(req.body(body).unwrap())
            .expect("api reachable");
        let status = res.status().as_u16();
        let text = res.body_mut().read_to_string().unwrap();
        self.answers.lock().unwrap().push_str(&text);
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).expect("json")
        };
        Reply { status, json }
    }

    pub fn put(&self, zone: &str, node: &str, commit: &str) -> Reply {
        let body = serde_json::json!({ "commit": commit });
        self.call(
            "PUT",
            &format!("/v1/zones/{zone}/nodes/{node}"),
            Some(&body),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Every server of the suite: no secret in its log or in any answer of its API.
        if !std::thread::panicking() {
            let mut secrets = self.secrets.clone();
            secrets.extend(data_dir_secrets(&self.data));
            let log = self.log();
            let answers = self.answers.lock().unwrap();
            for secret in &secrets {
                assert!(
                    !log.contains(secret.as_str()),
                    "a secret in the log:\n{log}"
                );
                assert!(
                    !answers.contains(secret.as_str()),
                    "a secret in an API answer"
                );
            }
        }
    }
}

/// The forms a secret would take in text: as given, and its bytes in hex and base64.
fn forms(bytes: &[u8]) -> Vec<String> {
    use base64::Engine;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    vec![
        hex,
        base64::engine::general_purpose::STANDARD.encode(bytes),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
    ]
}

/// The admin token, the TSIG secrets and the cookie secrets (their files' contents) of a
/// command line.
pub fn command_line_secrets(token: Option<&str>, extra: &[&str]) -> Vec<String> {
    use base64::Engine;
    let mut out: Vec<String> = token.into_iter().map(str::to_owned).collect();
    for pair in extra.windows(2) {
        if pair[0] == "--tsig-key" {
            let secret = pair[1].splitn(3, ':').nth(2).unwrap_or("");
            let secret = secret.split(',').next().unwrap_or("");
            if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(secret) {
                out.push(secret.to_owned());
                out.extend(forms(&bytes));
            }
        }
        if (pair[0] == "--cookie-secret-file" || pair[0] == "--cookie-staging-secret-file")
            && let Ok(text) = std::fs::read_to_string(pair[1])
        {
            let hex = text.trim().to_owned();
            out.push(hex.to_ascii_uppercase());
            out.push(hex);
        }
    }
    out.retain(|s| s.len() >= 8);
    out
}

/// The generated admin token, every zone's private key (the PKCS#8 document, and the base64
/// it is stored as) and every zone's report secret in `data`.
pub fn data_dir_secrets(data: &Path) -> Vec<String> {
    use base64::Engine;
    let mut out = Vec::new();
    if let Ok(token) = std::fs::read_to_string(data.join("admin.token")) {
        out.push(token.trim().to_owned());
    }
    for entry in std::fs::read_dir(data.join("keys")).into_iter().flatten() {
        let Ok(text) = std::fs::read_to_string(entry.unwrap().path()) else {
            continue;
        };
        for line in text.lines() {
            // A zone's report secret: node report keys are derived from it.
            if let Some(b64) = line.strip_prefix("secret: ") {
                out.push(b64.to_owned());
            }
            if let Some(b64) = line.strip_prefix("private-key: ") {
                out.push(b64.to_owned());
                if let Ok(der) = base64::engine::general_purpose::STANDARD.decode(b64) {
                    out.extend(forms(&der));
                }
            }
        }
    }
    out.retain(|s| s.len() >= 8);
    out
}

/// A DNS query through hickory's client, over UDP or TCP.
pub fn query(server: SocketAddr, name: &str, rtype: RecordType, tcp: bool) -> Message {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let name = Name::from_ascii(name).unwrap();
        let provider = TokioRuntimeProvider::default();
        let response = if tcp {
            let (stream, sender) =
                TcpClientStream::new(server, None, Some(Duration::from_secs(5)), provider);
            let (mut client, bg) =
                Client::<TokioRuntimeProvider>::new(stream.await.unwrap(), sender);
            tokio::spawn(bg);
            client.query(name, DNSClass::IN, rtype).await
        } else {
            let stream = UdpClientStream::builder(server, provider).build();
            let (mut client, bg) = Client::<TokioRuntimeProvider>::from_sender(stream);
            tokio::spawn(bg);
            client.query(name, DNSClass::IN, rtype).await
        };
        response.expect("dns answer").into_message()
    })
}

/// The TXT strings of the answer section.
pub fn txt(message: &Message) -> Vec<String> {
    message
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(t) => Some(
                t.txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect::<String>(),
            ),
            _ => None,
        })
        .collect()
}

/// `dig` output for a query (bind9-dnsutils).
pub fn dig(server: SocketAddr, args: &[&str]) -> String {
    let out = Command::new("dig")
        .arg(format!("@{}", server.ip()))
        .args([
            "-p",
            &server.port().to_string(),
            "+norec",
            "+time=2",
            "+tries=1",
        ])
        .args(args)
        .output()
        .expect("dig runs (apt-get install bind9-dnsutils)");
    assert!(
        out.status.success(),
        "dig failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A zones directory with the repository's example zone, for tests that change it.
pub fn copy_zones(to: &Path) -> PathBuf {
    let dir = to.join("zones");
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(repo_zones()).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
    }
    dir
}

/// A port free for both UDP and TCP on 127.0.0.1 (for a peer that cannot bind port 0 and
/// report back).
pub fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// One UDP query; `None` when nothing came back in 300 ms.
pub fn ask(server: SocketAddr, name: &str, rtype: RecordType) -> Option<Message> {
    let mut q = Message::query();
    q.metadata.id = 777;
    q.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    socket.send_to(&q.to_vec().unwrap(), server).ok()?;
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).ok()?;
    Message::from_vec(&buf[..n]).ok()
}

pub fn soa_serial(server: SocketAddr) -> Option<u32> {
    ask(server, "example.test.", RecordType::SOA)?
        .answers
        .iter()
        .find_map(|r| match &r.data {
            RData::SOA(s) => Some(s.serial),
            _ => None,
        })
}

/// Sends `msg` to `server` over UDP and returns the answer (within 5 s).
pub fn udp_exchange(server: SocketAddr, msg: &[u8]) -> Vec<u8> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    socket.send_to(msg, server).unwrap();
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).expect("an answer");
    buf[..n].to_vec()
}

/// Writes example.test's trust anchor (`herald key show` of the server with data directory
/// `data`) to `to`.
pub fn write_anchor(data: &Path, to: &Path) {
    std::fs::write(to, shown_keys(data)).unwrap();
}

/// What `herald key show` prints for example.test of the server with data directory `data`:
/// a DNSKEY line and a DS line for every key a node may pin.
pub fn shown_keys(data: &Path) -> String {
    let out = herald(&[
        "key",
        "show",
        "--zone",
        "example.test",
        "--data",
        data.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Writes node `node`'s report key (`herald key report` against data directory `data`) to
/// `<dir>/<node>.report-key` and returns the path.
pub fn report_key_file(data: &Path, dir: &Path, node: &str) -> PathBuf {
    let out = herald(&[
        "key",
        "report",
        "--data",
        data.to_str().unwrap(),
        "--zone",
        "example.test",
        "--node",
        node,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = dir.join(format!("{node}.report-key"));
    std::fs::write(&path, out.stdout).unwrap();
    path
}

/// One `herald watch --once` for `node` of example.test against `dns`, with the trust anchor
/// `anchor`, the state file `<dir>/<node>.state`, the report key `key` and the hook `exec`.
pub fn watch_once(
    dir: &Path,
    dns: SocketAddr,
    anchor: &Path,
    node: &str,
    key: &Path,
    exec: &str,
) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["watch", "--once", "--server", &dns.to_string()])
        .args(["--zone", "example.test", "--node", node, "--timeout", "2s"])
        .arg("--trust-anchor")
        .arg(anchor)
        .arg("--state")
        .arg(dir.join(format!("{node}.state")))
        .arg("--report-key")
        .arg(key)
        .args(["--exec", exec])
        .output()
        .unwrap()
}

/// The Unix time in seconds.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The value of the first line of `/metrics` that starts with `line_start`.
pub fn metric(server: &Server, line_start: &str) -> Option<f64> {
    let url = format!("{}/metrics", server.api);
    let text = ureq::get(&url)
        .call()
        .ok()?
        .body_mut()
        .read_to_string()
        .ok()?;
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Polls until `f` holds; returns how long it took, or panics with `what` after `limit`.
pub fn wait_for(limit: Duration, what: &str, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
    start.elapsed()
}

/// Runs the `herald` binary with `args` and returns what it did; the admin token is never
/// in what it prints.
pub fn herald(args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .output()
        .unwrap();
    for stream in [&out.stdout, &out.stderr] {
        assert!(
            !String::from_utf8_lossy(stream).contains(TOKEN),
            "the admin token in the output of herald {args:?}"
        );
    }
    out
}

/// Raises this process's open-file limit to `want` (or the hard limit): the attacker below
/// holds thousands of sockets.
pub fn raise_nofile(want: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write and read a plain struct we own.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        // Root may raise the hard limit too; others get what the hard limit allows.
        let raised = libc::rlimit {
            rlim_cur: want,
            rlim_max: want.max(lim.rlim_max),
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
            return want;
        }
        lim.rlim_cur = want.min(lim.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
    lim.rlim_cur
}
