//! Credentials written in a URL: stripped from everything lockstep records or shows, and
//! handed to git for one network operation through the askpass mechanism.

use std::ffi::OsString;
use std::path::Path;

use crate::source::SourceError;

/// The variables that carry a URL's credentials to the askpass program: set for git's
/// process only, where the remote helpers inherit them, and never on any argv.
const ASKPASS_USERNAME: &str = "LOCKSTEP_GIT_USERNAME";
const ASKPASS_PASSWORD: &str = "LOCKSTEP_GIT_PASSWORD";

/// A URL without the secrets it may carry: the whole user-info of http(s) URLs (often a
/// token), the password of others. scp-like `user@host:path` has no secret and stays.
pub fn strip_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else { return url.to_string() };
    if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") {
        format!("{scheme}://{host}{path}")
    } else {
        let user = userinfo.split(':').next().unwrap_or("");
        format!("{scheme}://{user}@{host}{path}")
    }
}

/// The secret a URL carries, as (user, password), percent-decoded as git decodes them: the
/// user-info of an http(s) URL (a lone token is the user, with an empty password), the
/// password of others. `None` when [`strip_credentials`] leaves the URL as it is.
fn url_credentials(url: &str) -> Option<(String, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (user, password) = match userinfo.split_once(':') {
        Some((user, password)) => (user, password),
        None if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") => (userinfo, ""),
        None => return None,
    };
    let decode = crate::support::text::percent_decode;
    Some((decode(user), decode(password)))
}

/// When git (`GIT_ASKPASS`) or ssh (`SSH_ASKPASS`) runs lockstep to ask for a URL's
/// credentials, with the prompt as its only argument: the answer. `None` for any other
/// command line. `var` reads the environment.
pub fn askpass_answer(args: &[OsString], var: impl Fn(&str) -> Option<String>) -> Option<String> {
    let [_, prompt] = args else { return None };
    let password = var(ASKPASS_PASSWORD)?;
    // Prompts are sentences; no lockstep command or option has a space.
    let prompt = prompt.to_str().filter(|p| p.contains(' '))?;
    match prompt.starts_with("Username") {
        true => Some(var(ASKPASS_USERNAME).unwrap_or_default()),
        false => Some(password),
    }
}

/// What git needs for one network operation on a URL with credentials: leading options and
/// variables.
pub(super) struct CredentialSetup {
    pub(super) options: Vec<OsString>,
    pub(super) vars: Vec<(&'static str, OsString)>,
}

/// Variables and leading options that give git the credentials of `url` for one network
/// operation. The user's credential helpers are left out for such a URL: it names its own
/// credentials, and a helper such as `store` would write them to disk.
pub(super) fn credential_setup(url: &str) -> Result<CredentialSetup, SourceError> {
    let Some((user, password)) = url_credentials(url) else {
        return Ok(CredentialSetup { options: Vec::new(), vars: Vec::new() });
    };
    let exe = std::env::current_exe().map_err(|e| SourceError::io(Path::new("/proc/self/exe"), e))?;
    let options = vec!["-c".into(), "credential.helper=".into()];
    let vars = vec![
        ("GIT_ASKPASS", exe.clone().into_os_string()),
        // A password in an ssh URL goes to ssh through the same program.
        ("SSH_ASKPASS", exe.into_os_string()),
        ("SSH_ASKPASS_REQUIRE", "force".into()),
        (ASKPASS_USERNAME, user.into()),
        (ASKPASS_PASSWORD, password.into()),
    ];
    Ok(CredentialSetup { options, vars })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_stripped() {
        assert_eq!(strip_credentials("https://user:tok@github.com/o/r.git"), "https://github.com/o/r.git");
        assert_eq!(strip_credentials("https://tok@h/o/r"), "https://h/o/r");
        assert_eq!(strip_credentials("ssh://git:pw@h:22/o/r"), "ssh://git@h:22/o/r");
        assert_eq!(strip_credentials("git@github.com:o/r.git"), "git@github.com:o/r.git");
        assert_eq!(strip_credentials("file:///tmp/r"), "file:///tmp/r");
        assert_eq!(strip_credentials("https://h/path@v1"), "https://h/path@v1");
    }
    #[test]
    fn credentials_are_split_off_as_git_decodes_them() {
        let creds = url_credentials;
        assert_eq!(creds("https://user:t%40k@h/r"), Some(("user".into(), "t@k".into())));
        assert_eq!(creds("https://tok@h/r"), Some(("tok".into(), "".into())));
        assert_eq!(creds("ssh://git:pw@h/r"), Some(("git".into(), "pw".into())));
        assert_eq!(creds("ssh://git@h/r"), None, "an ssh user is no secret");
        assert_eq!(creds("git@h:o/r"), None);
        assert_eq!(creds("https://h/path@v1"), None);
        assert_eq!(creds("file:///tmp/r"), None);
    }

    #[test]
    fn askpass_answers_only_a_prompt_with_the_credentials_given() {
        let args = |prompt: &str| vec![OsString::from("lockstep"), OsString::from(prompt)];
        let unset = |_: &str| None;
        assert_eq!(askpass_answer(&args("Password for 'https://h': "), unset), None, "not run by git");
        let set = |name: &str| match name {
            ASKPASS_USERNAME => Some("bob".to_string()),
            ASKPASS_PASSWORD => Some("tok".to_string()),
            _ => None,
        };
        assert_eq!(askpass_answer(&args("Username for 'https://h': "), set).as_deref(), Some("bob"));
        assert_eq!(askpass_answer(&args("Password for 'https://h': "), set).as_deref(), Some("tok"));
        assert_eq!(askpass_answer(&args("git@h's password: "), set).as_deref(), Some("tok"));
        assert_eq!(askpass_answer(&args("runs"), set), None, "a command stays a command");
        assert_eq!(askpass_answer(&[OsString::from("lockstep")], set), None);
    }
}
