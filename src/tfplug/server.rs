//! The go-plugin side of serving: handshake, listener (unix socket, optionally mTLS), the
//! controller/stdio/broker services, and process lifecycle.

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine as _;
use futures::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::Connected;
use tonic::{Request, Response, Status, Streaming};

use super::Error;
use super::proto::plugin as gp;
use super::proto::tfplugin6 as pb;
use super::provider::Provider;
use super::rpc::ProviderService;
use super::tls::ServerTls;

pub const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
pub const MAGIC_COOKIE_VALUE: &str =
    "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";
/// go-plugin's core protocol version (first handshake field).
const CORE_PROTOCOL_VERSION: u32 = 1;
const APP_PROTOCOL_VERSION: u32 = 6;
/// Three copies of a resource travel in each plan request; Kubernetes objects can be large.
pub const MAX_MESSAGE_SIZE: usize = 256 * 1024 * 1024;
/// After Shutdown, give in-flight responses this long before the process leaves anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// What Terraform told us through the environment.
#[derive(Debug)]
pub struct PluginEnv {
    /// `PLUGIN_CLIENT_CERT` when TLS is wanted (unset, empty or `TF_DISABLE_PLUGIN_TLS` → plaintext).
    pub client_cert_pem: Option<String>,
    pub socket_dir: Option<PathBuf>,
}

/// Checks the magic cookie and protocol versions; the error text is for a person.
pub fn read_plugin_env(provider_source: &str) -> Result<PluginEnv, String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if var(MAGIC_COOKIE_KEY).as_deref() != Some(MAGIC_COOKIE_VALUE) {
        return Err(not_started_by_terraform(provider_source));
    }
    if let Some(offered) = var("PLUGIN_PROTOCOL_VERSIONS") {
        let speaks_6 = offered
            .split(',')
            .any(|v| v.trim() == APP_PROTOCOL_VERSION.to_string());
        if !speaks_6 {
            return Err(format!(
                "This Terraform offers plugin protocol versions {offered}, but this provider speaks only \
                 protocol {APP_PROTOCOL_VERSION}. Use Terraform 1.0 or later."
            ));
        }
    }
    let tls_disabled = var("TF_DISABLE_PLUGIN_TLS").is_some();
    let client_cert_pem = if tls_disabled {
        None
    } else {
        var("PLUGIN_CLIENT_CERT")
    };
    Ok(PluginEnv {
        client_cert_pem,
        socket_dir: var("PLUGIN_UNIX_SOCKET_DIR").map(PathBuf::from),
    })
}

fn not_started_by_terraform(provider_source: &str) -> String {
    let name = provider_source
        .rsplit('/')
        .next()
        .unwrap_or(provider_source);
    format!(
        "This binary is a Terraform provider plugin ({provider_source}). It is not meant to be run \
         directly: Terraform starts it when a configuration uses the provider.\n\
         To use it, declare it in `required_providers` ({name} = {{ source = \"{provider_source}\" }}) \
         and run `terraform init`; for a local build, put the binary under a plugin directory \
         (`terraform init -plugin-dir=DIR`, layout DIR/<host>/<namespace>/<type>/<version>/<os>_<arch>/) \
         or use `dev_overrides` in the Terraform CLI configuration."
    )
}

/// The line go-plugin reads from our stdout: `1|6|unix|<path>|grpc|<base64 DER or empty>`.
pub fn handshake_line(socket: &Path, certificate_der: Option<&[u8]>) -> String {
    let cert = certificate_der
        .map(|der| base64::engine::general_purpose::STANDARD_NO_PAD.encode(der))
        .unwrap_or_default();
    format!(
        "{CORE_PROTOCOL_VERSION}|{APP_PROTOCOL_VERSION}|unix|{}|grpc|{cert}",
        socket.display()
    )
}

/// How the process was started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// By Terraform, with its plugin environment (the normal case).
    Plugin,
    /// By a developer (`--debug`): serve without Terraform's environment, print
    /// `TF_REATTACH_PROVIDERS` for Terraform to attach to, stop on Ctrl-C.
    Debug,
}

/// The whole life of a provider process, for `main`: prepares the process environment while it
/// is still single-threaded, then starts the tokio runtime and serves in `mode`.
pub fn run(provider_source: &str, provider: Arc<dyn Provider>, mode: Mode) {
    disable_backtraces();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| {
            eprintln!("cannot start the async runtime: {e}");
            std::process::exit(1)
        });
    let served = runtime.block_on(serve_inner(provider_source, provider, mode));
    if let Err(message) = served {
        eprintln!("{message}");
        std::process::exit(1);
    }
}

/// Serves `provider` to Terraform until it calls Shutdown. Exits the process with status 1 when
/// not started by Terraform or when the server cannot start. Prefer [`run`], which also
/// prepares the environment before any thread starts.
pub async fn serve(provider_source: &str, provider: Arc<dyn Provider>) {
    if let Err(message) = serve_inner(provider_source, provider, Mode::Plugin).await {
        eprintln!("{message}");
        std::process::exit(1);
    }
}

async fn serve_inner(
    provider_source: &str,
    provider: Arc<dyn Provider>,
    mode: Mode,
) -> Result<(), String> {
    let env = match mode {
        Mode::Plugin => read_plugin_env(provider_source)?,
        Mode::Debug => PluginEnv {
            client_cert_pem: None,
            socket_dir: None,
        },
    };
    super::log::init();
    install_panic_hook();
    super::tls::install_crypto_provider();
    let shutdown = CancellationToken::new();
    // Before the handshake line: Terraform may send SIGINT as soon as it has read it.
    let on_sigint = match mode {
        Mode::Plugin => None,
        Mode::Debug => Some(shutdown.clone()),
    };
    handle_sigint(on_sigint).map_err(|e| format!("cannot install the SIGINT handler: {e}"))?;

    let socket_dir = make_socket_dir(env.socket_dir.as_deref())
        .map_err(|e| format!("cannot create the plugin socket: {e}"))?;
    let socket = socket_dir.path().join("plugin.sock");
    let listener = UnixListener::bind(&socket)
        .map_err(|e| format!("cannot listen on {}: {e}", socket.display()))?;
    let tls = match &env.client_cert_pem {
        Some(pem) => Some(ServerTls::new(pem).map_err(|e| e.to_string())?),
        None => None,
    };
    match &tls {
        Some(_) => {
            tracing::debug!("serving with mTLS: client certificate pinned to PLUGIN_CLIENT_CERT")
        }
        None => tracing::debug!(
            "serving without TLS (no PLUGIN_CLIENT_CERT or TF_DISABLE_PLUGIN_TLS set)"
        ),
    }

    let incoming = accept_connections(
        listener,
        tls.as_ref().map(|t| TlsAcceptor::from(t.config.clone())),
        shutdown.clone(),
    );
    let line = match mode {
        Mode::Plugin => handshake_line(&socket, tls.as_ref().map(|t| t.certificate_der.as_slice())),
        Mode::Debug => debug_instructions(provider_source, &socket),
    };
    match (print_handshake(&line), mode) {
        (Ok(()), _) => {}
        (Err(e), Mode::Plugin) => return Err(format!("cannot write the handshake: {e}")),
        // A developer's terminal or pipe may be gone already; the server is still useful.
        (Err(e), Mode::Debug) => tracing::warn!("cannot print the reattach instructions: {e}"),
    }

    let result = run_grpc(provider, incoming, shutdown, mode).await;
    drop(socket_dir);
    result.map_err(|e| e.to_string())
}

/// Error diagnostics must never carry Rust backtraces (noise, and 4-6x memory when captured).
fn disable_backtraces() {
    // SAFETY: `run` calls this first thing, before it starts the runtime: the process has no
    // other thread that could read the environment concurrently.
    unsafe {
        std::env::remove_var("RUST_BACKTRACE");
        std::env::remove_var("RUST_LIB_BACKTRACE");
    }
}

/// Panics inside an RPC are turned into diagnostics by the RPC layer: they are logged without
/// the message (it may carry values) and never as "panic: ...", which Terraform would take for
/// a crash of the plugin. Any other panic is a real crash: its message goes to stderr as
/// Rust prints it, whatever the log level, so Terraform can show why the plugin died.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        if super::rpc::panic_will_be_caught(&location) {
            tracing::error!(
                location,
                "provider bug caught during an RPC; reported to Terraform as a diagnostic"
            );
        } else {
            let text = format!(
                "panic: {}\n\nat {location} (thread {})\n",
                panic_text(info.payload()),
                std::thread::current().name().unwrap_or("unnamed")
            );
            let _ = io::stderr().lock().write_all(text.as_bytes());
        }
    }));
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Terraform owns Ctrl-C: it sends SIGINT to the whole process group, then asks us to stop via
/// StopProvider. Dying on SIGINT would lose an in-flight create.
/// In debug mode (`stop` given) the developer's Ctrl-C stops the server instead.
fn handle_sigint(stop: Option<CancellationToken>) -> io::Result<()> {
    // Registering here (not inside the task) installs the handler before this returns.
    let mut interrupts = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    tokio::spawn(async move {
        while interrupts.recv().await.is_some() {
            match &stop {
                Some(stop) => stop.cancel(),
                None => tracing::debug!("ignoring SIGINT; Terraform will send StopProvider"),
            }
        }
    });
    Ok(())
}

/// What framework providers print in debug mode: the value of `TF_REATTACH_PROVIDERS` that
/// makes Terraform use this running process instead of starting one.
pub fn debug_instructions(provider_source: &str, socket: &Path) -> String {
    let reattach = serde_json::json!({
        provider_source: {
            "Protocol": "grpc",
            "ProtocolVersion": APP_PROTOCOL_VERSION,
            "Pid": std::process::id(),
            "Test": true,
            "Addr": {"Network": "unix", "String": socket.display().to_string()},
        }
    });
    format!(
        "Provider started. To attach Terraform CLI, set the TF_REATTACH_PROVIDERS environment \
         variable with the following:\n\n\tTF_REATTACH_PROVIDERS='{reattach}'\n\nStop with Ctrl-C."
    )
}

fn make_socket_dir(parent: Option<&Path>) -> io::Result<tempfile::TempDir> {
    let builder = {
        let mut b = tempfile::Builder::new();
        b.prefix("tfplug");
        b
    };
    match parent {
        Some(dir) => builder.tempdir_in(dir),
        None => builder.tempdir(),
    }
}

/// One write for the whole text, so a reader that stops at the line it wants has it all.
fn print_handshake(line: &str) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_all(format!("{line}\n").as_bytes())?;
    stdout.flush()
}

type Incoming = ReceiverStream<Result<Conn, io::Error>>;

/// A client that connects and never finishes its TLS handshake must not hold a task forever.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

async fn tls_handshake(
    acceptor: &TlsAcceptor,
    stream: UnixStream,
    timeout: Duration,
) -> io::Result<TlsStream<UnixStream>> {
    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no TLS handshake within {timeout:?}"),
        )),
    }
}

/// Pauses between failed accepts, doubling from 5 ms to 1 s (as Go's net/http server does).
#[derive(Default)]
struct AcceptBackoff {
    last: Option<Duration>,
}

impl AcceptBackoff {
    const FIRST: Duration = Duration::from_millis(5);
    const MAX: Duration = Duration::from_secs(1);

    fn next_pause(&mut self) -> Duration {
        let pause = self
            .last
            .map_or(Self::FIRST, |last| (last * 2).min(Self::MAX));
        self.last = Some(pause);
        pause
    }

    fn reset(&mut self) {
        self.last = None;
    }
}

/// Accepts on the unix socket; TLS handshakes run per connection so one bad client cannot
/// stall the others.
fn accept_connections(
    listener: UnixListener,
    tls: Option<TlsAcceptor>,
    shutdown: CancellationToken,
) -> Incoming {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let mut backoff = AcceptBackoff::default();
        loop {
            let stream = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        backoff.reset();
                        stream
                    }
                    Err(e) => {
                        // E.g. out of file descriptors: retrying at once would spin.
                        let pause = backoff.next_pause();
                        tracing::warn!("accept failed: {e}; retrying in {pause:?}");
                        tokio::select! {
                            _ = shutdown.cancelled() => break,
                            _ = tokio::time::sleep(pause) => continue,
                        }
                    }
                },
            };
            match &tls {
                None => {
                    if tx.send(Ok(Conn::Plain(stream))).await.is_err() {
                        break;
                    }
                }
                Some(acceptor) => {
                    let (acceptor, tx) = (acceptor.clone(), tx.clone());
                    tokio::spawn(async move {
                        match tls_handshake(&acceptor, stream, TLS_HANDSHAKE_TIMEOUT).await {
                            Ok(tls_stream) => {
                                tracing::debug!(
                                    "mTLS connection accepted with the pinned client certificate"
                                );
                                let _ = tx.send(Ok(Conn::Tls(Box::new(tls_stream)))).await;
                            }
                            Err(e) => {
                                tracing::warn!("refused a connection: TLS handshake failed: {e}")
                            }
                        }
                    });
                }
            }
        }
    });
    ReceiverStream::new(rx)
}

async fn run_grpc(
    provider: Arc<dyn Provider>,
    incoming: Incoming,
    shutdown: CancellationToken,
    mode: Mode,
) -> Result<(), Error> {
    let provider_service = pb::provider_server::ProviderServer::new(ProviderService::new(provider))
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE);
    // A debug server outlives the Terraform runs that attach to it.
    let controller = gp::grpc_controller_server::GrpcControllerServer::new(Controller {
        shutdown: (mode == Mode::Plugin).then(|| shutdown.clone()),
    });
    let stdio = gp::grpc_stdio_server::GrpcStdioServer::new(Stdio {
        shutdown: shutdown.clone(),
    });
    let broker = gp::grpc_broker_server::GrpcBrokerServer::new(Broker {
        shutdown: shutdown.clone(),
    });
    let server = tonic::transport::Server::builder()
        .add_service(provider_service)
        .add_service(controller)
        .add_service(stdio)
        .add_service(broker)
        .serve_with_incoming_shutdown(incoming, shutdown.clone().cancelled_owned());
    let deadline = async {
        shutdown.cancelled().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        result = server => result?,
        _ = deadline => tracing::debug!("connections still open after Shutdown; exiting anyway"),
    }
    tracing::debug!("plugin server stopped");
    Ok(())
}

struct Controller {
    /// `None` in debug mode, where only Ctrl-C stops the server.
    shutdown: Option<CancellationToken>,
}

#[tonic::async_trait]
impl gp::grpc_controller_server::GrpcController for Controller {
    async fn shutdown(&self, _request: Request<gp::Empty>) -> Result<Response<gp::Empty>, Status> {
        match &self.shutdown {
            Some(shutdown) => {
                tracing::debug!("Shutdown requested by Terraform");
                shutdown.cancel();
            }
            None => tracing::debug!("Shutdown requested; debug mode keeps serving until Ctrl-C"),
        }
        Ok(Response::new(gp::Empty {}))
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// A stream that yields nothing and ends at shutdown (we never write to stdout/stderr through it).
fn silent_until<T: Send + 'static>(shutdown: CancellationToken) -> BoxStream<T> {
    use futures::StreamExt;
    Box::pin(futures::stream::once(shutdown.cancelled_owned()).filter_map(|()| async { None }))
}

struct Stdio {
    shutdown: CancellationToken,
}

#[tonic::async_trait]
impl gp::grpc_stdio_server::GrpcStdio for Stdio {
    type StreamStdioStream = BoxStream<gp::StdioData>;

    async fn stream_stdio(
        &self,
        _request: Request<gp::Empty>,
    ) -> Result<Response<Self::StreamStdioStream>, Status> {
        Ok(Response::new(silent_until(self.shutdown.clone())))
    }
}

struct Broker {
    shutdown: CancellationToken,
}

#[tonic::async_trait]
impl gp::grpc_broker_server::GrpcBroker for Broker {
    type StartStreamStream = BoxStream<gp::ConnInfo>;

    /// Providers open no extra brokered connections; drain what the host sends and stay open.
    async fn start_stream(
        &self,
        request: Request<Streaming<gp::ConnInfo>>,
    ) -> Result<Response<Self::StartStreamStream>, Status> {
        let mut inbound = request.into_inner();
        tokio::spawn(async move { while let Ok(Some(_)) = inbound.message().await {} });
        Ok(Response::new(silent_until(self.shutdown.clone())))
    }
}

/// A client connection, plaintext or TLS, as tonic wants it.
pub(crate) enum Conn {
    Plain(UnixStream),
    Tls(Box<TlsStream<UnixStream>>),
}

impl Connected for Conn {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Conn::Plain(s) => s.is_write_vectored(),
            Conn::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_line_has_go_plugin_fields() {
        let line = handshake_line(Path::new("/tmp/x/plugin.sock"), Some(&[1, 2, 3, 4]));
        // RawStdEncoding: no padding.
        assert_eq!(line, "1|6|unix|/tmp/x/plugin.sock|grpc|AQIDBA");
        assert_eq!(handshake_line(Path::new("/s"), None), "1|6|unix|/s|grpc|");
    }

    #[test]
    fn failed_accepts_back_off_up_to_a_second_and_reset_on_success() {
        let mut backoff = AcceptBackoff::default();
        let pauses: Vec<Duration> = (0..10).map(|_| backoff.next_pause()).collect();
        assert_eq!(pauses[0], Duration::from_millis(5));
        assert_eq!(pauses[1], Duration::from_millis(10));
        assert!(pauses.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(pauses[9], Duration::from_secs(1));
        backoff.reset();
        assert_eq!(backoff.next_pause(), Duration::from_millis(5));
    }

    #[tokio::test]
    async fn a_client_that_never_speaks_tls_is_dropped_after_the_timeout() {
        super::super::tls::install_crypto_provider();
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        let client_pem = params.self_signed(&key).unwrap().pem();
        let tls = ServerTls::new(&client_pem).unwrap();
        let acceptor = TlsAcceptor::from(tls.config.clone());
        let (server_end, _silent_client) = UnixStream::pair().unwrap();
        let started = std::time::Instant::now();
        let result = tls_handshake(&acceptor, server_end, Duration::from_millis(200)).await;
        assert_eq!(
            result.err().map(|e| e.kind()),
            Some(io::ErrorKind::TimedOut)
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn message_for_people_names_the_provider_and_terraform() {
        let text = not_started_by_terraform("registry.terraform.io/example/thing");
        assert!(text.contains("Terraform provider plugin (registry.terraform.io/example/thing)"));
        assert!(text.contains("terraform init"));
    }
}
