//! Readiness for systemd's `Type=notify` (sd_notify(3)): one datagram to `$NOTIFY_SOCKET`.
//!
//! Written here rather than with a crate: the protocol is one `send` of `READY=1` (or
//! `STOPPING=1`) to a Unix datagram socket, an abstract one when the path starts with `@`.
//! Without `$NOTIFY_SOCKET` (not run by systemd) nothing is sent.

use std::os::unix::net::UnixDatagram;

/// Tells systemd `state` (`READY=1`, `STOPPING=1`). Failures are logged, never fatal: the
/// server serves either way.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sent = UnixDatagram::unbound().and_then(|socket| {
        let bytes = path.as_encoded_bytes();
        match bytes.strip_prefix(b"@") {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                socket.send_to_addr(state.as_bytes(), &addr)
            }
            None => socket.send_to(state.as_bytes(), &path),
        }
    });
    if let Err(e) = sent {
        tracing::warn!(error = %e, state, "cannot notify systemd");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_the_state_to_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).unwrap();
        // SAFETY of the test: no other test reads or writes NOTIFY_SOCKET.
        unsafe { std::env::set_var("NOTIFY_SOCKET", &path) };
        notify("READY=1");
        unsafe { std::env::remove_var("NOTIFY_SOCKET") };
        let mut buf = [0u8; 64];
        let n = socket.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        // Without the variable: nothing, and no error.
        notify("READY=1");
    }
}
