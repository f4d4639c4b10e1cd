//! Descriptors fetched from a running server by gRPC server reflection.
//!
//! v1 is asked first; a server that answers UNIMPLEMENTED (Python grpcio
//! serves only v1alpha) is asked again over v1alpha. The two versions share
//! their message layout field for field, so one set of types serves both and
//! only the method path differs.
//!
//! Each question is its own call with its request already queued, so a server
//! that withholds response headers until its first reply (grpcio does) cannot
//! stall the client.

use std::collections::{BTreeSet, HashSet};

use anyhow::{Context, Result, anyhow, bail};
use prost_reflect::DescriptorPool;
use tonic::{Code, client::Grpc};

use crate::transport::Channel;
use tonic_prost::ProstCodec;
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, ServerReflectionResponse, server_reflection_request::MessageRequest,
    server_reflection_response::MessageResponse,
};

use crate::descriptors::File;

/// Which reflection protocol a server answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// `grpc.reflection.v1.ServerReflection`
    V1,
    /// `grpc.reflection.v1alpha.ServerReflection`
    V1Alpha,
}

impl Version {
    fn path(self) -> &'static str {
        match self {
            Version::V1 => "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            Version::V1Alpha => "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        }
    }
}

/// What reflection told us about a server.
#[derive(Debug, Clone)]
pub struct Reflected {
    /// The protocol the server speaks.
    pub version: Version,
    /// Every service the server lists, in its order.
    pub services: Vec<String>,
    /// Descriptors of those services and everything they import.
    pub pool: DescriptorPool,
}

/// Lists the server's services and fetches the files that define them, with
/// every transitive import; fails if any listed service cannot be described.
/// [`crate::discovery`] copes with servers that list what they cannot describe.
pub async fn fetch(channel: Channel) -> Result<Reflected> {
    let mut session = Session::open(channel).await?;
    let services = session.services.clone();
    let mut files: Vec<File> = Vec::new();
    for service in &services {
        for file in session.describe(service).await? {
            if !files.iter().any(|known| known.name == file.name) {
                files.push(file);
            }
        }
    }
    let pool = crate::descriptors::pool_from_files(files)
        .context("the server's descriptors do not form a valid set")?;
    Ok(Reflected { version: session.version, services, pool })
}

/// A conversation with a server's reflection service: what it lists, and
/// the files it can give for each symbol.
#[derive(Debug)]
pub struct Session {
    client: Client,
    /// The protocol the server speaks.
    pub version: Version,
    /// Every service the server lists, in its order.
    pub services: Vec<String>,
}

impl Session {
    /// Asks v1, then v1alpha, for the list of services.
    pub async fn open(channel: Channel) -> Result<Session> {
        let mut client = Client { grpc: Grpc::new(channel), version: Version::V1 };
        let services = match client.list_services().await {
            Err(err) if is_unimplemented(&err) => {
                client.version = Version::V1Alpha;
                client.list_services().await.context("the server offers neither reflection v1 nor v1alpha")?
            }
            other => other?,
        };
        Ok(Session { version: client.version, client, services })
    }

    /// The file that defines `symbol` and every file it imports.
    pub async fn describe(&mut self, symbol: &str) -> Result<Vec<File>> {
        let mut files: Vec<File> = Vec::new();
        let mut seen = HashSet::new();
        let answer = self
            .client
            .ask(MessageRequest::FileContainingSymbol(symbol.to_owned()))
            .await
            .with_context(|| format!("fetching the descriptor of {symbol}"))?;
        add_files(answer, &mut files, &mut seen)?;
        // Servers may answer with only the defining file; fetch missing
        // imports by name until the set is closed.
        loop {
            let missing: BTreeSet<String> = files
                .iter()
                .flat_map(|f| f.dependencies.iter())
                .filter(|d| !seen.contains(*d))
                .cloned()
                .collect();
            if missing.is_empty() {
                break;
            }
            for name in missing {
                let answer =
                    self.client.ask(MessageRequest::FileByFilename(name.clone())).await.with_context(
                        || format!("fetching {name}, which the descriptor of {symbol} imports"),
                    )?;
                add_files(answer, &mut files, &mut seen)?;
                // A server that cannot find the file must not loop us forever.
                seen.insert(name);
            }
        }
        Ok(files)
    }
}

#[derive(Debug)]
struct Client {
    grpc: Grpc<Channel>,
    version: Version,
}

impl Client {
    async fn ask(&mut self, request: MessageRequest) -> Result<MessageResponse> {
        let request = ServerReflectionRequest { host: String::new(), message_request: Some(request) };
        self.grpc.ready().await.map_err(|err| anyhow!("reflection channel not ready: {err}"))?;
        let codec = ProstCodec::<ServerReflectionRequest, ServerReflectionResponse>::default();
        let path = self.version.path().parse().expect("static path");
        let mut responses = self
            .grpc
            .streaming(tonic::Request::new(tokio_stream::iter([request])), path, codec)
            .await?
            .into_inner();
        let answer = responses
            .message()
            .await?
            .ok_or_else(|| anyhow!("the reflection stream ended without an answer"))?;
        match answer.message_response {
            Some(MessageResponse::ErrorResponse(error)) => {
                bail!("reflection error {}: {}", Code::from(error.error_code), error.error_message)
            }
            Some(response) => Ok(response),
            None => bail!("the reflection answer is empty"),
        }
    }

    async fn list_services(&mut self) -> Result<Vec<String>> {
        match self.ask(MessageRequest::ListServices(String::new())).await? {
            MessageResponse::ListServicesResponse(list) => {
                Ok(list.service.into_iter().map(|s| s.name).collect())
            }
            other => bail!("expected a service list, got {other:?}"),
        }
    }
}

fn add_files(answer: MessageResponse, files: &mut Vec<File>, seen: &mut HashSet<String>) -> Result<()> {
    let MessageResponse::FileDescriptorResponse(response) = answer else {
        bail!("expected file descriptors, got {answer:?}");
    };
    for encoded in response.file_descriptor_proto {
        let file = File::decode(encoded)?;
        if seen.insert(file.name.clone()) {
            files.push(file);
        }
    }
    Ok(())
}

fn is_unimplemented(err: &anyhow::Error) -> bool {
    err.downcast_ref::<tonic::Status>().is_some_and(|status| status.code() == Code::Unimplemented)
}
