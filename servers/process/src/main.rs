fn main() {
    echo_core::process::main_with("process", server_process::setup(), server_process::serve)
}
