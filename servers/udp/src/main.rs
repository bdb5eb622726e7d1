fn main() {
    echo_core::process::main_datagrams_with("udp", server_udp::setup(), server_udp::serve)
}
