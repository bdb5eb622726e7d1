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
