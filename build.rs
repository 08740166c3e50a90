//! Generates the gRPC code for the plugin protocol with protox (pure Rust), so a fresh machine
//! needs nothing but cargo.

const PROTOS: [&str; 2] = ["proto/tfplugin6.proto", "proto/go_plugin.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = protox::compile(PROTOS, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
