//! Transaction types. A transaction's `type` names the module that checks
//! and applies it; the ledger refuses types no module claims.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

/// A module that owns one transaction type.
pub trait TxModule: Send + Sync + 'static {
    /// The `type` field this module owns, e.g. `attest`.
    fn tx_type(&self) -> &'static str;

    /// Stateless checks of the type-specific `body`. The error text is shown
    /// to the client as is, so it must say what to fix.
    fn check_body(&self, body: &Value) -> Result<(), String>;

    /// Checks the body as [`TxModule::check_body`] does and, for a module
    /// that parses bodies into a type of its own, hands back that parsed
    /// body. [`SignedTx`](crate::SignedTx) carries it, so the rules that
    /// apply the transaction do not parse it again.
    fn parse_body(&self, body: &Value) -> Result<Option<ParsedBody>, String> {
        self.check_body(body).map(|()| None)
    }
}

/// A body parsed into its module's own type, and checked.
pub type ParsedBody = Arc<dyn Any + Send + Sync>;

/// The transaction types a node accepts.
#[derive(Clone, Default)]
pub struct ModuleRegistry {
    modules: HashMap<&'static str, Arc<dyn TxModule>>,
}

impl ModuleRegistry {
    /// A registry with the built-in types of the ledger (`attest`).
    pub fn with_builtins() -> Self {
        let mut registry = ModuleRegistry::default();
        registry.register(Arc::new(crate::attest::Attest));
        registry
    }

    pub fn register(&mut self, module: Arc<dyn TxModule>) {
        self.modules.insert(module.tx_type(), module);
    }

    pub fn get(&self, tx_type: &str) -> Option<&dyn TxModule> {
        self.modules.get(tx_type).map(|m| m.as_ref())
    }

    pub fn types(&self) -> Vec<&'static str> {
        let mut types: Vec<_> = self.modules.keys().copied().collect();
        types.sort_unstable();
        types
    }
}
