fn main() {
    echo_core::process::main_with("uring", server_uring::setup(), server_uring::serve)
}
