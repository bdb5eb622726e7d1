fn main() {
    echo_core::process::main_with("reuseport", server_reuseport::setup(), server_reuseport::serve)
}
