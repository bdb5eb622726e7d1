fn main() {
    echo_core::process::main("nonblocking", server_nonblocking::serve)
}
