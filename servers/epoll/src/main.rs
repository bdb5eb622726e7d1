fn main() {
    echo_core::process::main("epoll", server_epoll::serve)
}
