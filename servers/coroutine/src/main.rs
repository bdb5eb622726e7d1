fn main() {
    echo_core::process::main("coroutine", server_coroutine::serve)
}
