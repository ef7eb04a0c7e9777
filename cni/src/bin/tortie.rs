//! The `tortie` CNI plugin. With arguments it is a small offload tool instead (see
//! `tortie_cni::tool`); runtimes call plugins without any.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.is_empty() {
        std::process::exit(tortie_cni::tool::main(&args));
    }
    tortie_cni::run::main(tortie_cni::run::Plugin::Main)
}
