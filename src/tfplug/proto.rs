//! Generated gRPC code (see build.rs and proto/).

#[allow(clippy::all, clippy::pedantic, dead_code)]
pub mod tfplugin6 {
    tonic::include_proto!("tfplugin6");
}

#[allow(clippy::all, clippy::pedantic, dead_code)]
pub mod plugin {
    tonic::include_proto!("plugin");
}
