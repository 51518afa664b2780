ferret_provider::provider!(static APP = "Ui.App");

struct Request {
    path: String,
}

fn main() {
    let req = Request { path: "/".into() };
    // The whole struct is not a field type; `req.path` would be.
    ferret_provider::write_event!(APP, "Request", level: Information, request = req);
}
