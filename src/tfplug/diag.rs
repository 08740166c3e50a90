//! Diagnostics (errors and warnings tied to attribute paths) as Terraform shows them.

use std::fmt;

use super::proto::tfplugin6 as pb;

/// One step into a value: an object attribute, a map key or a list/tuple index.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathStep {
    AttributeName(String),
    ElementKeyString(String),
    ElementKeyInt(i64),
}

/// Where in a resource's value a diagnostic or a replacement applies. Empty means the whole block.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttributePath {
    pub steps: Vec<PathStep>,
}

impl AttributePath {
    pub fn root() -> Self {
        Self::default()
    }

    pub fn new(attribute: impl Into<String>) -> Self {
        Self::root().attr(attribute)
    }

    pub fn attr(mut self, name: impl Into<String>) -> Self {
        self.steps.push(PathStep::AttributeName(name.into()));
        self
    }

    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.steps.push(PathStep::ElementKeyString(key.into()));
        self
    }

    pub fn index(mut self, index: i64) -> Self {
        self.steps.push(PathStep::ElementKeyInt(index));
        self
    }

    pub fn is_root(&self) -> bool {
        self.steps.is_empty()
    }

    pub(crate) fn to_proto(&self) -> pb::AttributePath {
        use pb::attribute_path::step::Selector;
        let steps = self
            .steps
            .iter()
            .map(|step| pb::attribute_path::Step {
                selector: Some(match step {
                    PathStep::AttributeName(n) => Selector::AttributeName(n.clone()),
                    PathStep::ElementKeyString(k) => Selector::ElementKeyString(k.clone()),
                    PathStep::ElementKeyInt(i) => Selector::ElementKeyInt(*i),
                }),
            })
            .collect();
        pb::AttributePath { steps }
    }
}

impl fmt::Display for AttributePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.steps.is_empty() {
            return f.write_str("(root)");
        }
        for (i, step) in self.steps.iter().enumerate() {
            match step {
                PathStep::AttributeName(n) if i == 0 => write!(f, "{n}")?,
                PathStep::AttributeName(n) => write!(f, ".{n}")?,
                PathStep::ElementKeyString(k) => write!(f, "[{k:?}]")?,
                PathStep::ElementKeyInt(idx) => write!(f, "[{idx}]")?,
            }
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub summary: String,
    pub detail: String,
    /// `None` ties the diagnostic to the whole resource block.
    pub path: Option<AttributePath>,
}

/// Accumulates what an operation wants Terraform to show. Errors never carry backtraces.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics {
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn error(
        &mut self,
        summary: impl Into<String>,
        detail: impl Into<String>,
        path: AttributePath,
    ) {
        self.push(Severity::Error, summary.into(), detail.into(), Some(path));
    }

    /// An error about the whole block rather than one attribute.
    pub fn root_error(&mut self, summary: impl Into<String>, detail: impl Into<String>) {
        self.push(Severity::Error, summary.into(), detail.into(), None);
    }

    pub fn warning(
        &mut self,
        summary: impl Into<String>,
        detail: impl Into<String>,
        path: AttributePath,
    ) {
        self.push(Severity::Warning, summary.into(), detail.into(), Some(path));
    }

    pub fn root_warning(&mut self, summary: impl Into<String>, detail: impl Into<String>) {
        self.push(Severity::Warning, summary.into(), detail.into(), None);
    }

    pub fn push(
        &mut self,
        severity: Severity,
        summary: String,
        detail: String,
        path: Option<AttributePath>,
    ) {
        // A root path is the same as no path for Terraform; normalise so equality is simple.
        let path = path.filter(|p| !p.is_root());
        self.items.push(Diagnostic {
            severity,
            summary,
            detail,
            path,
        });
    }

    /// Records a layer error; value errors keep their attribute path.
    pub fn from_error(&mut self, summary: &str, error: &super::Error) {
        match error {
            super::Error::Value { path, message } => {
                self.error(summary, message.clone(), path.clone())
            }
            other => self.root_error(summary, other.to_string()),
        }
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| d.severity == Severity::Error)
    }

    pub(crate) fn to_proto(&self) -> Vec<pb::Diagnostic> {
        self.items
            .iter()
            .map(|d| pb::Diagnostic {
                severity: match d.severity {
                    Severity::Error => pb::diagnostic::Severity::Error as i32,
                    Severity::Warning => pb::diagnostic::Severity::Warning as i32,
                },
                summary: d.summary.clone(),
                detail: d.detail.clone(),
                attribute: d.path.as_ref().map(AttributePath::to_proto),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_display_reads_like_terraform() {
        let path = AttributePath::new("labels").key("app").attr("x").index(2);
        assert_eq!(path.to_string(), "labels[\"app\"].x[2]");
        assert_eq!(AttributePath::root().to_string(), "(root)");
    }

    #[test]
    fn diagnostics_convert_to_proto_with_steps() {
        let mut diags = Diagnostics::new();
        diags.error("Bad", "detail", AttributePath::new("a").index(1));
        diags.root_warning("Careful", "");
        assert!(diags.has_errors());
        let proto = diags.to_proto();
        assert_eq!(proto.len(), 2);
        assert_eq!(proto[0].attribute.as_ref().unwrap().steps.len(), 2);
        assert!(proto[1].attribute.is_none());
        assert_eq!(proto[1].severity, pb::diagnostic::Severity::Warning as i32);
    }
}
