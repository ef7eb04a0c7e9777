//! The `tortie-ipam` CNI IPAM plugin.

fn main() {
    tortie_cni::run::main(tortie_cni::run::Plugin::Ipam)
}
