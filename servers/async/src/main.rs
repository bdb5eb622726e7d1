fn main() {
    echo_core::process::main("async", server_async::serve)
}
