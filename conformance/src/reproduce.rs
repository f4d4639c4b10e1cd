//! Shell commands that replay an input against the target.

use harness::discovery::Schema;
use prost_reflect::{DynamicMessage, MethodDescriptor};

use crate::context::Context;

/// A `buf curl` line sending `requests` (one JSON object each) to `method`.
/// buf reads the schema by reflection where the server described the
/// service; otherwise the line names the schema the suite used: the user's
/// descriptor set, or `proto/`, which holds the contracts this suite knows.
/// Deadlines are not part of the line: buf curl has no flag that sends one.
/// TLS settings are repeated; header values are not, since they are often
/// credentials.
pub fn buf_curl(ctx: &Context, method: &MethodDescriptor, requests: &[DynamicMessage]) -> String {
    let data: Vec<String> = requests
        .iter()
        .map(|message| serde_json::to_string(message).unwrap_or_else(|err| format!("<not JSON: {err}>")))
        .collect();
    let mut line = String::from("buf curl --protocol grpc");
    let security = ctx.channel.security();
    match security.tls_options() {
        None => line.push_str(" --http2-prior-knowledge"),
        Some(tls) => {
            let files =
                [("--cacert", &tls.ca_cert), ("--cert", &tls.client_cert), ("--key", &tls.client_key)];
            for (flag, path) in files {
                if let Some(path) = path {
                    line.push_str(&format!(" {flag} {}", shell_quote(&path.display().to_string())));
                }
            }
            if tls.insecure {
                line.push_str(" --insecure");
            }
        }
    }
    for name in security.headers().keys() {
        line.push_str(&format!(" -H {}", shell_quote(&format!("{name}: REDACTED"))));
    }
    match ctx.discovery.schema_of(method.parent_service().full_name()) {
        Some(Schema::File(path)) => {
            line.push_str(&format!(" --schema {}", shell_quote(&path.display().to_string())))
        }
        Some(Schema::Contracts) => line.push_str(" --schema proto"),
        Some(Schema::Reflection) | None => {}
    }
    line.push_str(&format!(" -d {}", shell_quote(&data.join(" "))));
    line.push_str(&format!(" {}/{}/{}", ctx.url, method.parent_service().full_name(), method.name()));
    line
}

/// Protobuf text format of each message, numbered when there are several.
pub fn text(messages: &[DynamicMessage]) -> String {
    match messages {
        [] => "(no messages)".to_owned(),
        [one] => match harness::text::to_text(one) {
            text if text.is_empty() => "(every field unset)".to_owned(),
            text => text,
        },
        many => many
            .iter()
            .enumerate()
            .map(|(i, m)| format!("#{i}: {}", harness::text::to_text(m).replace('\n', "\n    ")))
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}
