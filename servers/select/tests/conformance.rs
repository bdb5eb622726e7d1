//! The conformance suite (crate `echo-conformance`) run against this model.

echo_conformance::suite!(select, env!("CARGO_BIN_EXE_server-select"), kind = Kind::Select);
echo_conformance::http_suite!(
    http_select,
    env!("CARGO_BIN_EXE_server-select"),
    kind = Kind::Select
);
