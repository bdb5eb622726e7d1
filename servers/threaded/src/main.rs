fn main() {
    echo_core::process::main("threaded", server_threaded::serve)
}
