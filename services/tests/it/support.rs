//! Starting a server and connecting to it.

use services::{Config, RunningServer};
use tonic::{Code, Status, transport::Channel};

pub(crate) async fn start() -> (RunningServer, Channel) {
    start_with(Config::default()).await
}

pub(crate) async fn start_with(config: Config) -> (RunningServer, Channel) {
    let server = services::spawn(config).await.expect("server starts");
    let channel = tonic::transport::Endpoint::from_shared(server.url())
        .unwrap()
        .connect()
        .await
        .expect("client connects");
    (server, channel)
}

/// Asserts that `result` failed with `code`, printing the whole status when
/// it did not.
#[track_caller]
pub(crate) fn assert_code<T: std::fmt::Debug>(result: Result<T, Status>, code: Code) -> Status {
    match result {
        Err(status) if status.code() == code => status,
        other => panic!("expected {code:?}, got {other:?}"),
    }
}
