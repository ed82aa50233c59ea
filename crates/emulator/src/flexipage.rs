//! Lightning apps and their utility bars (issue #15): what decides which background utility
//! items run on an app's pages.
//!
//! - Each org has Lightning apps (`AppDefinition`: `DeveloperName`, `NamespacePrefix`,
//!   `Label`, `UtilityBar` — the developer name of the app's utility bar `FlexiPage`, or null).
//!   By default the two standard apps a new org shows: Sales (`standard__LightningSales`, with a
//!   utility bar holding one utility item) and Service (`standard__LightningService`, without
//!   one).
//! - A utility bar is a `FlexiPage` of type `UtilityBar`, kept as its Metadata API XML. Its
//!   region of type `Background` lists the background items (`componentInstance` →
//!   `componentName`, `c:Name` for the org's own components). Tooling's `FlexiPage.Metadata`
//!   is the same content as JSON (`metadata_json`).
//! - A deploy may replace a FlexiPage whole (`validate` checks it, including that each
//!   component of the org's own namespace it names exists); an Aura bundle a FlexiPage still
//!   names cannot be deleted.

use serde_json::{Map, Value, json};

/// A Lightning app of an org, as `AppDefinition` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LightningApp {
    pub durable_id: String,
    /// `standard` for Salesforce's apps; `None` for the org's own.
    pub namespace: Option<String>,
    pub developer_name: String,
    pub label: String,
    /// The developer name of the app's utility bar FlexiPage.
    pub utility_bar: Option<String>,
}

impl LightningApp {
    /// `standard__LightningSales`, or `MyApp` for an app without a namespace: the name the
    /// Metadata API and `/lightning/app/…` use.
    pub fn full_name(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}__{}", self.developer_name),
            None => self.developer_name.clone(),
        }
    }
}

/// Fields that are lists in FlexiPage metadata (Tooling answers them as JSON arrays, even
/// with one element).
const LISTS: &[&str] = &[
    "flexiPageRegions",
    "itemInstances",
    "componentInstanceProperties",
    "properties",
    "valueListItems",
    "criteria",
    "fieldInstanceProperties",
    "events",
    "platformActionListItems",
    "quickActionListItems",
];

const TYPES: &[&str] = &[
    "AppPage",
    "CommAppPage",
    "CommForgotPasswordPage",
    "CommLoginPage",
    "CommObjectPage",
    "CommQuickActionCreatePage",
    "CommRecordPage",
    "CommRelatedListPage",
    "CommSearchResultPage",
    "CommSelfRegisterPage",
    "CommThemeLayoutPage",
    "HomePage",
    "MailAppAppPage",
    "RecordPage",
    "UtilityBar",
];

/// A utility bar's XML: its utility items (shown in the bar) and no background items.
pub fn utility_bar_xml(label: &str, utility_items: &[String]) -> String {
    let mut items = String::new();
    for name in utility_items {
        items.push_str(&format!(
            "        <itemInstances>\n            <componentInstance>\n                <componentName>{}</componentName>\n                <identifier>{}</identifier>\n            </componentInstance>\n        </itemInstances>\n",
            escape(name),
            escape(&name.replace(':', "_"))
        ));
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<FlexiPage xmlns=\"http://soap.sforce.com/2006/04/metadata\">\n    <flexiPageRegions>\n{items}        <name>utilityItems</name>\n        <type>Region</type>\n    </flexiPageRegions>\n    <flexiPageRegions>\n        <name>backgroundComponents</name>\n        <type>Background</type>\n    </flexiPageRegions>\n    <masterLabel>{}</masterLabel>\n    <template>\n        <name>one:utilityBarTemplateDesktop</name>\n    </template>\n    <type>UtilityBar</type>\n</FlexiPage>\n",
        escape(label)
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn parse(xml: &str) -> Result<roxmltree::Document<'_>, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("Error parsing file: {e}"))?;
    if doc.root_element().tag_name().name() != "FlexiPage" {
        return Err(format!(
            "Error parsing file: the root element is {}, not FlexiPage",
            doc.root_element().tag_name().name()
        ));
    }
    Ok(doc)
}

fn to_json(node: roxmltree::Node<'_, '_>) -> Value {
    let children: Vec<roxmltree::Node> = node.children().filter(|c| c.is_element()).collect();
    if children.is_empty() {
        return json!(node.text().unwrap_or(""));
    }
    let mut map = Map::new();
    for child in children {
        let name = child.tag_name().name().to_string();
        let value = to_json(child);
        if LISTS.contains(&name.as_str()) {
            match map.entry(name).or_insert_with(|| Value::Array(Vec::new())) {
                Value::Array(list) => list.push(value),
                other => *other = value,
            }
        } else {
            map.insert(name, value);
        }
    }
    Value::Object(map)
}

/// Tooling's `FlexiPage.Metadata`: the XML's elements as JSON (list fields as arrays, values
/// as strings).
pub fn metadata_json(xml: &str) -> Value {
    match parse(xml) {
        Ok(doc) => to_json(doc.root_element()),
        Err(_) => Value::Null,
    }
}

/// Each region's `(type, component names)`.
fn regions(xml: &str) -> Result<Vec<(String, Vec<String>)>, String> {
    let doc = parse(xml)?;
    let child_text = |n: roxmltree::Node, tag: &str| {
        n.children().find(|c| c.has_tag_name(tag)).and_then(|c| c.text()).unwrap_or("").trim().to_string()
    };
    Ok(doc
        .root_element()
        .children()
        .filter(|c| c.has_tag_name("flexiPageRegions"))
        .map(|region| {
            let names = region
                .descendants()
                .filter(|d| d.has_tag_name("componentInstance"))
                .map(|ci| child_text(ci, "componentName"))
                .collect();
            (child_text(region, "type"), names)
        })
        .collect())
}

/// The components a FlexiPage's `Background` regions name, in order.
pub fn background_components(xml: &str) -> Vec<String> {
    regions(xml).unwrap_or_default().into_iter().filter(|(t, _)| t == "Background").flat_map(|(_, n)| n).collect()
}

/// Every component a FlexiPage names.
pub fn component_names(xml: &str) -> Vec<String> {
    regions(xml).unwrap_or_default().into_iter().flat_map(|(_, n)| n).collect()
}

/// The org's own component a `componentName` names (`c:Name` or a bare `Name`), if it is one.
pub fn own_component(name: &str) -> Option<&str> {
    match name.split_once(':') {
        Some(("c", rest)) => Some(rest),
        Some(_) => None,
        None => Some(name),
    }
}

/// Checks a FlexiPage's XML as a deploy would: well-formed, a known `type`, a `masterLabel`,
/// at least one region, a template for a utility bar, and each of the org's own components
/// it names present (`exists`). The FlexiPage's type on success.
pub fn validate(xml: &str, exists: impl Fn(&str) -> bool) -> Result<String, String> {
    let doc = parse(xml)?;
    let root = doc.root_element();
    let text = |tag: &str| root.children().find(|c| c.has_tag_name(tag)).and_then(|c| c.text()).map(str::trim);
    let page_type = text("type").filter(|t| !t.is_empty()).ok_or("Required field is missing: type")?.to_string();
    if !TYPES.contains(&page_type.as_str()) {
        return Err(format!("type: bad value for restricted picklist field: {page_type}"));
    }
    if text("masterLabel").is_none_or(str::is_empty) {
        return Err("Required field is missing: masterLabel".into());
    }
    let regions = regions(xml)?;
    if regions.is_empty() {
        return Err("Required field is missing: flexiPageRegions".into());
    }
    let template = root
        .children()
        .find(|c| c.has_tag_name("template"))
        .and_then(|t| t.children().find(|c| c.has_tag_name("name")))
        .and_then(|n| n.text());
    if page_type == "UtilityBar" && template.is_none_or(|t| t.trim().is_empty()) {
        return Err("Required field is missing: template".into());
    }
    for (_, names) in &regions {
        for name in names {
            if name.is_empty() {
                return Err("Required field is missing: componentName".into());
            }
            if let Some(own) = own_component(name).filter(|own| !exists(own)) {
                return Err(format!("Component 'c:{own}' named in the page does not exist or is not accessible"));
            }
        }
    }
    Ok(page_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seeded_bar_has_its_items_and_an_empty_background_region() {
        let xml = utility_bar_xml("Sales UtilityBar", &["notes:utilityBarNoteList".to_string()]);
        assert_eq!(component_names(&xml), ["notes:utilityBarNoteList"]);
        assert!(background_components(&xml).is_empty());
        assert_eq!(validate(&xml, |_| false).as_deref(), Ok("UtilityBar"));
        let json = metadata_json(&xml);
        assert_eq!(json["type"], "UtilityBar");
        assert_eq!(json["flexiPageRegions"].as_array().map(Vec::len), Some(2));
        assert_eq!(
            json["flexiPageRegions"][0]["itemInstances"][0]["componentInstance"]["componentName"],
            "notes:utilityBarNoteList"
        );
        assert_eq!(json["template"]["name"], "one:utilityBarTemplateDesktop");
    }

    #[test]
    fn the_org_own_components_a_page_names_must_exist() {
        let xml = utility_bar_xml("Bar", &["c:missing".to_string()]);
        let err = validate(&xml, |_| false).expect_err("refused");
        assert!(err.contains("c:missing"), "{err}");
        assert!(validate(&xml, |name| name == "missing").is_ok());
        assert!(validate("<FlexiPage><type>Nope</type></FlexiPage>", |_| true).expect_err("refused").contains("Nope"));
        assert!(validate("<FlexiPage>", |_| true).expect_err("refused").starts_with("Error parsing file"));
        assert_eq!(own_component("c:x"), Some("x"));
        assert_eq!(own_component("notes:x"), None);
    }
}
