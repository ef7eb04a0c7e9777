//! The `tortie` CNI plugin.

fn main() {
    tortie_cni::run::main(tortie_cni::run::Plugin::Main)
}
