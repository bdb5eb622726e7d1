fn main() {
    echo_core::process::main("select", server_select::serve)
}
