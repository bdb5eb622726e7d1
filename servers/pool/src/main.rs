fn main() {
    echo_core::process::main("pool", server_pool::serve)
}
