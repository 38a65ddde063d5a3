//! OpenAPI schemas for value types whose JSON form is a string but whose Rust form is not a
//! plain newtype (so `#[derive(ToSchema)]` cannot describe them).

/// Implements `ToSchema` as a string schema with a description, an example and a pattern.
macro_rules! string_schema {
    ($ty:ty, $description:literal, example = $example:literal $(, pattern = $pattern:literal)?) => {
        impl utoipa::PartialSchema for $ty {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .description(Some($description))
                    .examples([$example])
                    $(.pattern(Some($pattern)))?
                    .into()
            }
        }

        impl utoipa::ToSchema for $ty {}
    };
}
pub(crate) use string_schema;
