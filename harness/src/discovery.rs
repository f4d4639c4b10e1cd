//! What a server serves, and where each service's schema comes from.
//!
//! The served set is what the server says it serves, never what a schema
//! happens to define:
//! - with reflection, the services `ListServices` names;
//! - without it, the candidates the server itself gives away: health knows
//!   the service, or an unknown method on it is refused differently from an
//!   unknown service. A candidate nothing can tell about is left for the
//!   user to name (`named`), never assumed.
//!
//! Schemas come per service: from reflection, else from the descriptor-set
//! file the user gave, else from the contracts this toolkit ships. A served
//! service with no schema anywhere stays in the served set (contract suites
//! need no schema from the server), and says why it has none.

use std::{fmt, path::PathBuf};

use anyhow::Result;
use bytes::Bytes;
use prost_reflect::{DescriptorPool, FileDescriptor, MessageDescriptor};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::{
    CallError, CallOptions, DynamicClient,
    descriptors::{self, File},
    reflection,
    transport::Channel,
};

/// Where a served service's schema came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schema {
    /// The server described it by reflection.
    Reflection,
    /// The descriptor-set file the user gave.
    File(PathBuf),
    /// The contracts compiled into this toolkit.
    Contracts,
}

impl fmt::Display for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schema::Reflection => f.write_str("reflection"),
            Schema::File(path) => write!(f, "{}", path.display()),
            Schema::Contracts => f.write_str("the contracts"),
        }
    }
}

/// A service the server serves.
#[derive(Debug, Clone)]
pub struct Served {
    /// Its fully qualified name.
    pub name: String,
    /// Where its schema came from, or why it has none.
    pub schema: Result<Schema, String>,
    /// Why reflection could not describe it, when it could not.
    pub reflection_error: Option<String>,
}

/// Everything discovery learned.
#[derive(Debug, Clone)]
pub struct Discovery {
    /// How the served set was learned, in words, for the report.
    pub how: String,
    /// The reflection protocol the server speaks, if any.
    pub reflection: Option<reflection::Version>,
    /// The served services, in name order.
    pub served: Vec<Served>,
    /// Candidates the server gave nothing away about, with why: not tested.
    pub undetermined: Vec<String>,
    /// The schemas of the served services that have one.
    pub pool: DescriptorPool,
}

impl Discovery {
    /// Where `service`'s schema came from, if it is served and has one.
    pub fn schema_of(&self, service: &str) -> Option<&Schema> {
        self.served.iter().find(|s| s.name == service).and_then(|s| s.schema.as_ref().ok())
    }

    /// A table for the run's output: each service and its schema's source.
    pub fn report(&self) -> String {
        let width = self.served.iter().map(|s| s.name.len()).chain(self.undetermined.iter().map(String::len));
        let width = width.max().unwrap_or(0);
        let mut out = format!("services ({}):", self.how);
        for service in &self.served {
            let line = match (&service.schema, &service.reflection_error) {
                (Ok(Schema::Reflection), _) => "schema from reflection".to_owned(),
                (Ok(schema), Some(error)) => {
                    format!("schema from {schema} (reflection could not describe it: {error})")
                }
                (Ok(schema), None) => format!("schema from {schema}"),
                (Err(why), _) => format!("no schema: its generic checks are skipped ({why})"),
            };
            out.push_str(&format!("\n  {:width$}  {line}", service.name));
        }
        for name in &self.undetermined {
            out.push_str(&format!(
                "\n  {name:width$}  not tested: without reflection the server gives no sign whether it serves it \
                 (name the served services with --services)"
            ));
        }
        out
    }
}

/// The schemas discovery may fall back on, in order.
#[derive(Debug, Clone)]
pub struct Fallbacks {
    /// The user's descriptor-set file, and what it holds.
    pub file: Option<(PathBuf, DescriptorPool)>,
    /// The contracts this toolkit ships.
    pub contracts: DescriptorPool,
}

/// Learns what the server at `channel` serves. `named` is the user's list of
/// served services (`--services`), which replaces every guess.
pub async fn discover(
    channel: Channel,
    fallbacks: &Fallbacks,
    named: Option<&[String]>,
) -> Result<Discovery> {
    let mut session = reflection::Session::open(channel.clone()).await;
    let reflection = session.as_ref().ok().map(|session| session.version);
    let (how, candidates, mut undetermined) = match (&mut session, named) {
        (_, Some(named)) => ("named with --services".to_owned(), named.to_vec(), Vec::new()),
        (Ok(session), None) => {
            let how = format!("reflection {:?} lists {}", session.version, session.services.len());
            (how, session.services.clone(), Vec::new())
        }
        (Err(err), None) => {
            let (served, undetermined) = probe(channel, fallbacks).await;
            let how = format!("no reflection ({err:#}); the server says it serves {}", served.len());
            (how, served, undetermined)
        }
    };
    let mut pool = DescriptorPool::new();
    let mut served = Vec::new();
    let mut names = candidates;
    names.sort();
    names.dedup();
    for name in names {
        let mut reflection_error = None;
        if let Ok(session) = &mut session {
            match session.describe(&name).await {
                Ok(files) => match descriptors::extend(&pool, files) {
                    Ok(grown) if grown.get_service_by_name(&name).is_some() => {
                        pool = grown;
                        served.push(Served { name, schema: Ok(Schema::Reflection), reflection_error });
                        continue;
                    }
                    Ok(_) => reflection_error = Some(format!("its files do not define {name}")),
                    Err(err) => reflection_error = Some(format!("{err:#}")),
                },
                Err(err) => reflection_error = Some(format!("{err:#}")),
            }
        }
        let schema = fallback(&mut pool, &name, fallbacks);
        served.push(Served { name, schema, reflection_error });
    }
    undetermined.sort();
    Ok(Discovery { how, reflection, served, undetermined, pool })
}

/// `name`'s schema from the user's file, else the contracts, added to `pool`.
fn fallback(pool: &mut DescriptorPool, name: &str, fallbacks: &Fallbacks) -> Result<Schema, String> {
    let sources = fallbacks
        .file
        .iter()
        .map(|(path, file)| (file, Schema::File(path.clone())))
        .chain([(&fallbacks.contracts, Schema::Contracts)]);
    let mut conflicts = Vec::new();
    for (source, schema) in sources {
        let Some(service) = source.get_service_by_name(name) else { continue };
        match descriptors::extend(pool, closure(&service.parent_file())) {
            Ok(grown) => {
                *pool = grown;
                return Ok(schema);
            }
            Err(err) => conflicts.push(format!("{schema}'s does not fit beside the others: {err:#}")),
        }
    }
    let mut why = vec!["reflection did not describe it".to_owned()];
    if fallbacks.file.is_none() {
        why.push("no --descriptors file".to_owned());
    }
    why.push("the contracts do not define it".to_owned());
    Err(if conflicts.is_empty() { why.join("; ") } else { conflicts.join("; ") })
}

/// `file` and everything it imports, from its pool, imports first.
fn closure(file: &FileDescriptor) -> Vec<File> {
    fn visit(file: &FileDescriptor, ordered: &mut Vec<File>) {
        if ordered.iter().any(|known| known.name == file.name()) {
            return;
        }
        for imported in file.dependencies() {
            visit(&imported, ordered);
        }
        ordered.push(File::of(file));
    }
    let mut ordered = Vec::new();
    visit(file, &mut ordered);
    ordered
}

/// Without reflection: the candidates (the user's file, else the contracts)
/// the server says it serves, and those it gives no sign about.
async fn probe(channel: Channel, fallbacks: &Fallbacks) -> (Vec<String>, Vec<String>) {
    let source = fallbacks.file.as_ref().map_or(&fallbacks.contracts, |(_, pool)| pool);
    let candidates: Vec<String> = source
        .services()
        .map(|service| service.full_name().to_owned())
        .filter(|name| !name.starts_with("grpc.reflection."))
        .collect();
    let Some(output) = fallbacks.contracts.all_messages().next() else {
        return (Vec::new(), candidates);
    };
    let mut client = DynamicClient::new(channel.clone());
    let unknown_service = refusal(&mut client, "conformance.probe.NoSuchService", &output).await;
    let mut told = Vec::new();
    for name in &candidates {
        let by_health = matches!(
            crate::health::status(channel.clone(), name).await,
            Ok(ServingStatus::Serving | ServingStatus::NotServing)
        );
        let by_method = match (&unknown_service, refusal(&mut client, name, &output).await) {
            (Some(unknown), Some(unknown_method)) => Some(unknown_method != *unknown),
            _ => None,
        };
        told.push((name.clone(), by_health, by_method));
    }
    // A server that refuses an unknown method on some candidate unlike an
    // unknown service tells them apart: then refusing one like an unknown
    // service means it does not serve it.
    let distinguishes = told.iter().any(|(_, _, by_method)| *by_method == Some(true));
    let (mut served, mut undetermined) = (Vec::new(), Vec::new());
    for (name, by_health, by_method) in told {
        if by_health || by_method == Some(true) {
            served.push(name);
        } else if !(distinguishes && by_method == Some(false)) {
            undetermined.push(name);
        }
    }
    (served, undetermined)
}

/// How the server refuses a method no server has, on `service`: the
/// UNIMPLEMENTED message with the names taken out, so that refusals on two
/// services compare by wording alone. `None` when the answer is something
/// else.
async fn refusal(client: &mut DynamicClient, service: &str, output: &MessageDescriptor) -> Option<String> {
    const METHOD: &str = "ConformanceProbeNoSuchMethod";
    let path = format!("/{service}/{METHOD}");
    let options = CallOptions { watchdog: std::time::Duration::from_secs(10), ..Default::default() };
    let outcome = match client.raw(&path, vec![Bytes::new()], &options, output.clone()).await {
        Ok(mut stream) => stream.message().await.map(|_| ()),
        Err(err) => Err(err),
    };
    match outcome {
        Err(CallError::Status(status)) if status.code() == Code::Unimplemented => Some(
            status
                .message()
                .replace(&path, "{path}")
                .replace(&path[1..], "{path}")
                .replace(service, "{service}")
                .replace(METHOD, "{method}"),
        ),
        _ => None,
    }
}
