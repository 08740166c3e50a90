//! The provider binary. Terraform starts it with its plugin environment; `--debug` serves for
//! a debugger and prints `TF_REATTACH_PROVIDERS`; `--write-schema DIR` and `--write-docs DIR`
//! regenerate the committed schema snapshot and the reference docs; `--version` prints the
//! release version (the one in `Cargo.toml` and `CHANGELOG.md`).

use std::process::ExitCode;
use std::sync::Arc;

use terraform_provider_istio::provider::IstioProvider;
use terraform_provider_istio::{PROVIDER_SOURCE, generated, tfplug};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [flag, dir] if flag == "--write-schema" => write(generated::write_schema(dir.as_ref())),
        [flag, dir] if flag == "--write-docs" => write(generated::write_docs(dir.as_ref())),
        [flag] if flag == "--version" => {
            // One literal, so the version can be read from a cross-compiled binary too.
            println!(concat!(
                "terraform-provider-istio ",
                env!("CARGO_PKG_VERSION")
            ));
            ExitCode::SUCCESS
        }
        [] => serve(tfplug::Mode::Plugin),
        [flag] if flag == "--debug" => serve(tfplug::Mode::Debug),
        _ => {
            eprintln!(
                "usage: terraform-provider-istio [--version | --debug | --write-schema DIR | --write-docs DIR]"
            );
            ExitCode::from(2)
        }
    }
}

fn write(result: std::io::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `--debug` serves for a debugger and prints `TF_REATTACH_PROVIDERS` (see tfplug::Mode).
fn serve(mode: tfplug::Mode) -> ExitCode {
    tfplug::run(PROVIDER_SOURCE, Arc::new(IstioProvider::new()), mode);
    ExitCode::SUCCESS
}
