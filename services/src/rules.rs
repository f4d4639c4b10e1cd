//! Requests judged by their contract's own `buf.validate` rules, the same
//! rules the conformance suite reads, so that a rule is written once, in
//! the `.proto`, instead of again as a hand-written check.
//!
//! The generated types carry no reflection, so a request is re-read as a
//! `DynamicMessage` of its type in the contracts' descriptor set, which
//! holds `validate.proto` and therefore the rules. That costs one encode
//! and decode of a request, which is small beside any call's work.

use std::sync::OnceLock;

use prost_protovalidate::{Error, Validator, ValidatorOption};
use prost_reflect::{DescriptorPool, DynamicMessage};
use tonic::Status;

fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(contracts::FILE_DESCRIPTOR_SET).expect("the contracts' descriptor set decodes")
    })
}

/// Compiled once, for every contract message up front: compiling a rule's
/// CEL takes long enough (tens of milliseconds in a debug build) to eat a
/// first caller's short deadline.
fn validator() -> &'static Validator {
    static VALIDATOR: OnceLock<Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let contracts: Vec<_> = pool()
            .all_messages()
            .filter(|m| !m.package_name().starts_with("google.") && !m.package_name().starts_with("buf."))
            .collect();
        Validator::with_options(&[ValidatorOption::MessageDescriptors(contracts)])
    })
}

/// Reads the contracts and compiles their rules, so that no call pays for it.
pub(crate) fn prepare() {
    validator();
}

/// OK when `message`, of the contract type `full_name`, keeps its rules;
/// otherwise INVALID_ARGUMENT naming every broken rule and its field, as
/// `start_not_after_end: start must not be after end`.
pub(crate) fn check(message: &impl prost::Message, full_name: &str) -> Result<(), Status> {
    let desc = pool()
        .get_message_by_name(full_name)
        .unwrap_or_else(|| panic!("{full_name} is not a message of the contracts"));
    let dynamic = DynamicMessage::decode(desc, message.encode_to_vec().as_slice())
        .map_err(|err| Status::internal(format!("re-reading the request for its rules: {err}")))?;
    match validator().validate(&dynamic) {
        Ok(()) => Ok(()),
        Err(Error::Validation(error)) => {
            let broken: Vec<String> = error
                .violations()
                .iter()
                .map(|violation| match violation.field_path() {
                    path if path.is_empty() => format!("{}: {}", violation.rule_id(), violation.message()),
                    path => format!("{path}: {} ({})", violation.message(), violation.rule_id()),
                })
                .collect();
            Err(Status::invalid_argument(broken.join("; ")))
        }
        Err(other) => Err(Status::internal(format!("the rules of {full_name} cannot be evaluated: {other}"))),
    }
}
