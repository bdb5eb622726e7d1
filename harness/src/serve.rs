//! `harness serve MODEL [--addr HOST:PORT] [model options]`: runs one model
//! under the process contract, exactly as its own `server-MODEL` binary does.

use std::ffi::OsString;

/// Runs `model` with `args` (its `--addr` and its own options). Never returns.
pub fn serve(model: &str, args: Vec<OsString>) -> ! {
    let argv = std::iter::once(OsString::from(format!("harness serve {model}"))).chain(args);
    use echo_core::process::{run, run_datagrams_with, run_with};
    match model {
        "single" => run(model, argv, server_single::serve),
        "threaded" => run(model, argv, server_threaded::serve),
        "pool" => run(model, argv, server_pool::serve),
        "nonblocking" => run(model, argv, server_nonblocking::serve),
        "select" => run(model, argv, server_select::serve),
        "epoll" => run(model, argv, server_epoll::serve),
        "coroutine" => run(model, argv, server_coroutine::serve),
        "async" => run(model, argv, server_async::serve),
        "process" => run_with(model, server_process::setup(), argv, server_process::serve),
        "uring" => run_with(model, server_uring::setup(), argv, server_uring::serve),
        "reuseport" => run_with(model, server_reuseport::setup(), argv, server_reuseport::serve),
        "udp" => run_datagrams_with(model, server_udp::setup(), argv, server_udp::serve),
        other => {
            eprintln!(
                "harness: unknown model '{other}'; the models are: {}, and over UDP: {}",
                echo_core::MODELS.join(", "),
                echo_core::DATAGRAM_MODELS.join(", ")
            );
            std::process::exit(2)
        }
    }
}
