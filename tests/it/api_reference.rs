//! The repository's API reference (`docs/API.md`) and the OpenAPI document the service serves
//! say the same: every operation of the document has its place in the reference, which names
//! every status the operation answers and every field its body takes.

use serde_json::Value;

use crate::helpers::repo_path;

/// The reference's text about one operation: from the heading that names it (`` ## `POST
/// /v1/events` ``) to the next heading, or from the list item that does to the next item.
fn section<'a>(doc: &'a str, method: &str, path: &str) -> Option<&'a str> {
    let name = format!("`{method} {path}`");
    let start = doc
        .lines()
        .scan(0, |offset, line| {
            let at = *offset;
            *offset += line.len() + 1;
            Some((at, line))
        })
        .find(|(_, line)| (line.starts_with('#') || line.starts_with("- ")) && line.contains(&name))
        .map(|(at, _)| at)?;
    let rest = &doc[start..];
    let heading = rest.starts_with('#');
    let end = rest
        .match_indices('\n')
        .map(|(i, _)| i + 1)
        .find(|&i| rest[i..].starts_with('#') || (!heading && rest[i..].starts_with("- `")))
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

fn resolve<'a>(api: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let name = r.trim_start_matches("#/components/schemas/");
            resolve(api, &api["components"]["schemas"][name])
        }
        None => schema,
    }
}

/// Every property name a body schema takes, through refs and `oneOf`.
fn properties(api: &Value, schema: &Value, out: &mut Vec<String>) {
    let schema = resolve(api, schema);
    if let Some(props) = schema["properties"].as_object() {
        for (name, inner) in props {
            out.push(name.clone());
            if name == "events" {
                properties(api, &inner["items"], out);
            }
        }
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        for variant in schema[key].as_array().into_iter().flatten() {
            properties(api, variant, out);
        }
    }
}

#[test]
fn the_api_reference_names_every_operation_status_and_field_of_the_openapi_document() {
    let doc = std::fs::read_to_string(repo_path("docs/API.md")).unwrap();
    let api: Value = serde_json::from_str(touchpoint::api::openapi::document()).unwrap();
    let mut checked = 0;
    for (path, item) in api["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let method = method.to_uppercase();
            let text = section(&doc, &method, path)
                .unwrap_or_else(|| panic!("docs/API.md has no place for `{method} {path}`"));
            for status in op["responses"].as_object().unwrap().keys() {
                assert!(
                    text.contains(&format!("`{status}")) || text.contains(&format!("{status} ")),
                    "docs/API.md does not say that `{method} {path}` answers {status}:\n{text}"
                );
            }
            let mut fields = Vec::new();
            if let Some(body) =
                op["requestBody"]["content"]["application/json"]["schema"].as_object()
            {
                properties(&api, &Value::Object(body.clone()), &mut fields);
            }
            for field in fields {
                assert!(
                    text.contains(&format!("`{field}`")),
                    "docs/API.md does not name the field `{field}` of `{method} {path}`"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "{checked} operations");
    assert!(!doc.contains("../shared"), "the reference stands alone");
}
