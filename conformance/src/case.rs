//! A case: a name, the contract it needs, and an async check.

use std::{future::Future, pin::Pin, sync::Arc};

use crate::{context::Context, report::Verdict};

/// What a case's check returns.
pub type CaseFuture = Pin<Box<dyn Future<Output = Verdict> + Send>>;

type Check = Arc<dyn Fn(Arc<Context>) -> CaseFuture + Send + Sync>;

/// One named check.
#[derive(Clone)]
pub struct Case {
    /// Stable, glob-selectable name: `<suite>/<method>/<property>`.
    pub name: String,
    /// The suite it reports under: a service name, or `generic`.
    pub suite: String,
    /// The service the target must serve for the case to run; otherwise it
    /// is skipped as *not served*.
    pub requires: Option<String>,
    check: Check,
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Case").field("name", &self.name).field("requires", &self.requires).finish()
    }
}

impl Case {
    /// A case of `suite` that needs `requires` served.
    pub fn new<F, Fut>(suite: &str, name: impl Into<String>, requires: Option<&str>, check: F) -> Self
    where
        F: Fn(Arc<Context>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Verdict> + Send + 'static,
    {
        Case {
            name: name.into(),
            suite: suite.to_owned(),
            requires: requires.map(str::to_owned),
            check: Arc::new(move |ctx| Box::pin(check(ctx))),
        }
    }

    /// A case of `suite` that is always skipped, for `reason`: it stands for
    /// checks that cannot run, so that the report says why instead of
    /// leaving them out.
    pub fn skipped(suite: &str, name: impl Into<String>, reason: String) -> Self {
        Case::new(suite, name, None, move |_| std::future::ready(Verdict::Skipped { reason: reason.clone() }))
    }

    /// Runs the check, or skips it when its contract is not served.
    pub async fn run(&self, ctx: Arc<Context>) -> Verdict {
        if let Some(service) = &self.requires
            && !ctx.services.contains(service)
        {
            return Verdict::Skipped { reason: "not served".to_owned() };
        }
        (self.check)(ctx).await
    }
}
