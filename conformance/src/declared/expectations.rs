//! `conformance.v1.expectation` options: reading them from a method, and
//! judging one call by them.

use std::{panic::AssertUnwindSafe, sync::Arc};

use cel::{Program, Value};
use harness::CallError;
use prost_reflect::{DynamicMessage, MethodDescriptor};
use tonic::Code;

use super::cel as convert;

/// The extension that holds a method's expectations.
const EXTENSION: &str = "conformance.v1.expectation";

/// A CEL expression, compiled once: a `when` is evaluated on every drawn
/// input, thousands of times in a case.
#[derive(Debug, Clone)]
pub(super) struct Expression {
    /// As the contract wrote it, for reports.
    pub(super) source: String,
    program: Arc<Program>,
}

impl Expression {
    fn compile(source: &str) -> Result<Self, String> {
        let program = std::panic::catch_unwind(|| Program::compile(source))
            .map_err(|_| "the CEL parser panicked".to_owned())?
            .map_err(|err| err.to_string())?;
        Ok(Expression { source: source.to_owned(), program: Arc::new(program) })
    }

    /// Whether it reads `variable`.
    pub(super) fn uses(&self, variable: &str) -> bool {
        self.program.references().has_variable(variable)
    }
}

/// One expectation of a method.
#[derive(Debug, Clone)]
pub(super) struct Expectation {
    /// Its name in reports: its own, or its position (`1`, `2`, ...).
    pub(super) name: String,
    /// The CEL predicate on the requests that says where it applies.
    pub(super) when: Option<Expression>,
    /// What must happen where it applies.
    pub(super) outcome: Outcome,
}

/// What an expectation demands of a call.
#[derive(Debug, Clone)]
pub(super) enum Outcome {
    /// This CEL predicate holds (and the call ends OK, unless the predicate
    /// judges `status` itself).
    Expect(Expression),
    /// The call ends with this status.
    Code(Code),
}

/// The expectations `method` declares, in order; `Err` names the first one
/// that cannot be used, and why.
pub(super) fn of(method: &MethodDescriptor) -> Result<Vec<Expectation>, String> {
    let Some(ext) = method.parent_pool().get_extension_by_name(EXTENSION) else { return Ok(Vec::new()) };
    let options = method.options();
    if !options.has_extension(&ext) {
        return Ok(Vec::new());
    }
    let list = options.get_extension(&ext);
    let mut out = Vec::new();
    for (index, item) in list.as_list().unwrap_or_default().iter().enumerate() {
        let Some(item) = item.as_message() else { continue };
        let text = |name: &str| {
            item.get_field_by_name(name).and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
        };
        let name = match text("name") {
            name if name.is_empty() => (index + 1).to_string(),
            name => name,
        };
        let which = format!("expectation `{name}` of {}", method.full_name());
        let when = match text("when") {
            when if when.trim().is_empty() => None,
            when => Some(
                Expression::compile(&when)
                    .map_err(|err| format!("{which}: `when` does not compile: {err}"))?,
            ),
        };
        if let Some(when) = &when
            && let Some(variable) = ["response", "responses", "status"].into_iter().find(|v| when.uses(v))
        {
            return Err(format!(
                "{which}: `when` uses `{variable}`, but it is judged before the call, on the requests alone"
            ));
        }
        let outcome = match (text("expect"), text("code")) {
            (expect, code) if !expect.is_empty() && code.is_empty() => Outcome::Expect(
                Expression::compile(&expect)
                    .map_err(|err| format!("{which}: `expect` does not compile: {err}"))?,
            ),
            (expect, code) if expect.is_empty() && !code.is_empty() => Outcome::Code(
                code_named(&code)
                    .ok_or_else(|| format!("{which}: `{code}` is not a gRPC status code name"))?,
            ),
            _ => return Err(format!("{which}: it needs `expect` or `code`")),
        };
        out.push(Expectation { name, when, outcome });
    }
    Ok(out)
}

/// The canonical name of every status code, as in the gRPC spec.
const CODES: [(&str, Code); 17] = [
    ("OK", Code::Ok),
    ("CANCELLED", Code::Cancelled),
    ("UNKNOWN", Code::Unknown),
    ("INVALID_ARGUMENT", Code::InvalidArgument),
    ("DEADLINE_EXCEEDED", Code::DeadlineExceeded),
    ("NOT_FOUND", Code::NotFound),
    ("ALREADY_EXISTS", Code::AlreadyExists),
    ("PERMISSION_DENIED", Code::PermissionDenied),
    ("RESOURCE_EXHAUSTED", Code::ResourceExhausted),
    ("FAILED_PRECONDITION", Code::FailedPrecondition),
    ("ABORTED", Code::Aborted),
    ("OUT_OF_RANGE", Code::OutOfRange),
    ("UNIMPLEMENTED", Code::Unimplemented),
    ("INTERNAL", Code::Internal),
    ("UNAVAILABLE", Code::Unavailable),
    ("DATA_LOSS", Code::DataLoss),
    ("UNAUTHENTICATED", Code::Unauthenticated),
];

fn code_named(name: &str) -> Option<Code> {
    CODES.iter().find(|(n, _)| *n == name.trim()).map(|(_, code)| *code)
}

/// A code's canonical name.
pub(super) fn code_name(code: Code) -> &'static str {
    CODES.iter().find(|(_, c)| *c == code).map_or("UNKNOWN", |(name, _)| name)
}

/// What one call gives an expression to judge.
pub(super) struct Call<'a> {
    pub(super) method: &'a MethodDescriptor,
    pub(super) requests: &'a [DynamicMessage],
    /// `None` while only the requests are known (for `when`).
    pub(super) ended: Option<(&'a [DynamicMessage], &'a Result<(), CallError>)>,
}

impl Call<'_> {
    /// The value of each variable, by name, as CEL sees it.
    fn variables(&self) -> Vec<(&'static str, Value)> {
        let mut vars = Vec::new();
        if self.method.is_client_streaming() {
            vars.push(("requests", convert::messages(self.requests)));
        } else if let Some(request) = self.requests.first() {
            vars.push(("request", convert::message(request)));
        }
        if let Some((responses, outcome)) = self.ended {
            if self.method.is_server_streaming() {
                vars.push(("responses", convert::messages(responses)));
            } else if let Some(response) = responses.first() {
                vars.push(("response", convert::message(response)));
            }
            let (code, message) = match outcome {
                Ok(()) => (Code::Ok, String::new()),
                Err(err) => (err.code().unwrap_or(Code::Unknown), err.to_string()),
            };
            let status: std::collections::HashMap<String, Value> = [
                ("code".to_owned(), Value::Int(code as i64)),
                ("name".to_owned(), Value::String(Arc::new(code_name(code).to_owned()))),
                ("message".to_owned(), Value::String(Arc::new(message))),
            ]
            .into();
            vars.push(("status", Value::from(status)));
        }
        vars
    }

    /// Whether `expression` holds for this call. `Err` when it cannot be
    /// evaluated: it names a variable this call lacks, overflows, or is not
    /// a boolean.
    pub(super) fn holds(&self, expression: &Expression) -> Result<bool, String> {
        let program = &expression.program;
        let mut context = convert::context();
        for (name, value) in self.variables() {
            context.add_variable_from_value(name, value);
        }
        let value = std::panic::catch_unwind(AssertUnwindSafe(|| program.execute(&context)))
            .map_err(|_| "the CEL interpreter panicked".to_owned())?
            .map_err(|err| err.to_string())?;
        match value {
            Value::Bool(holds) => Ok(holds),
            other => Err(format!("it gives {other:?}, not a bool")),
        }
    }

    /// The variables `expression` uses, each in text format, for a report.
    pub(super) fn shown(&self, expression: &Expression) -> String {
        let mut lines = Vec::new();
        let text = |messages: &[DynamicMessage]| crate::reproduce::text(messages);
        let uses = |name: &str| expression.uses(name);
        if uses("request") {
            lines.push(format!(
                "request:\n  {}",
                indented(&text(&self.requests[..self.requests.len().min(1)]))
            ));
        }
        if uses("requests") {
            lines.push(format!("requests ({}):\n  {}", self.requests.len(), indented(&text(self.requests))));
        }
        if let Some((responses, outcome)) = self.ended {
            if uses("response") {
                lines.push(format!("response:\n  {}", indented(&text(&responses[..responses.len().min(1)]))));
            }
            if uses("responses") {
                lines.push(format!("responses ({}):\n  {}", responses.len(), indented(&text(responses))));
            }
            if uses("status") {
                lines.push(format!("status: {}", crate::generic::describe(outcome)));
            }
        }
        lines.join("\n")
    }
}

/// `text` with its later lines indented under its first.
fn indented(text: &str) -> String {
    text.replace('\n', "\n  ")
}
