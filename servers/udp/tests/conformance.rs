//! The UDP conformance suite (`echo_conformance::udp`) run against this model.

echo_conformance::udp_suite!(udp, env!("CARGO_BIN_EXE_server-udp"), args = []);
echo_conformance::udp_suite!(
    udp_batch,
    env!("CARGO_BIN_EXE_server-udp"),
    args = ["--batch", "32"]
);
echo_conformance::udp_suite!(
    udp_two_workers,
    env!("CARGO_BIN_EXE_server-udp"),
    args = ["--workers", "2"]
);

/// The protocol step's options are the TCP models'; the datagram echo
/// refuses them in one line rather than ignoring them.
#[test]
fn protocol_and_work_options_are_refused() {
    for args in [["--protocol", "http"], ["--work", "wait:1000"]] {
        let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_server-udp"))
            .args(["--addr", "127.0.0.1:0"])
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("server-udp runs");
        // A server that took the option would serve until killed.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while server.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                server.kill().unwrap();
                panic!("{args:?}: the server took the option and kept serving");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let output = server.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("apply to the TCP models"), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}
