fn main() {
    echo_core::process::main("single", server_single::serve)
}
