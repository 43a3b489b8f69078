//! Command-line arguments of the host's tools (runner, `ring-plan`, `rebalance`): one loop for all.

use anyhow::{bail, Context as _};
use std::str::FromStr;

/// The arguments after the one being handled, to take a flag's value from.
pub struct Values<'a> {
    rest: &'a mut dyn Iterator<Item = String>,
    usage: &'a str,
}

impl Values<'_> {
    /// The value of `flag` (the next argument); an error naming the flag when there is none.
    pub fn value(&mut self, flag: &str) -> anyhow::Result<String> {
        self.rest.next().with_context(|| format!("{flag} needs a value\n\n{}", self.usage))
    }

    /// The value of `flag` parsed as a `T`; the error says what `flag` takes (`what`).
    pub fn parsed<T: FromStr>(&mut self, flag: &str, what: &str) -> anyhow::Result<T> {
        let raw = self.value(flag)?;
        raw.parse().ok().with_context(|| format!("{flag} takes {what}, not {raw:?}"))
    }

    /// The value of `flag` as a duration in milliseconds (decimals allowed, not negative).
    pub fn millis(&mut self, flag: &str) -> anyhow::Result<std::time::Duration> {
        let ms: f64 = self.parsed(flag, "milliseconds")?;
        std::time::Duration::try_from_secs_f64(ms / 1000.0).ok().with_context(|| format!("{flag} takes milliseconds of at least 0, not {ms}"))
    }
}

/// Whether the tool should go on after its arguments were read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// Every argument was taken: run.
    Run,
    /// `-h`/`--help`: the usage was printed; exit successfully.
    Help,
}

/// Hand each argument to `each(arg, values)`, which takes the values it needs and returns whether it
/// knew the argument; an unknown one is an error showing `usage`. `-h` and `--help` print `usage`.
pub fn parse(
    args: impl IntoIterator<Item = String>,
    usage: &str,
    mut each: impl FnMut(&str, &mut Values) -> anyhow::Result<bool>,
) -> anyhow::Result<Parsed> {
    let mut rest = args.into_iter();
    while let Some(arg) = rest.next() {
        if arg == "-h" || arg == "--help" {
            print!("{usage}");
            return Ok(Parsed::Help);
        }
        let mut values = Values { rest: &mut rest, usage };
        if !each(&arg, &mut values)? {
            bail!("unknown argument {arg:?}\n\n{usage}");
        }
    }
    Ok(Parsed::Run)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_values_and_errors() {
        let (mut name, mut n, mut quiet) = (None, 0u32, false);
        let parsed = parse(strings(&["--name", "x", "--n", "7", "--quiet"]), "USAGE", |arg, v| {
            match arg {
                "--name" => name = Some(v.value(arg)?),
                "--n" => n = v.parsed(arg, "a number")?,
                "--quiet" => quiet = true,
                _ => return Ok(false),
            }
            Ok(true)
        });
        assert_eq!(parsed.unwrap(), Parsed::Run);
        assert_eq!((name.as_deref(), n, quiet), (Some("x"), 7, true));

        let known = |arg: &str, v: &mut Values| -> anyhow::Result<bool> {
            if arg == "--n" {
                v.parsed::<u32>(arg, "a number")?;
                return Ok(true);
            }
            Ok(false)
        };
        assert!(format!("{:#}", parse(strings(&["--n"]), "USAGE", known).unwrap_err()).contains("--n needs a value"));
        assert!(format!("{:#}", parse(strings(&["--n", "lots"]), "USAGE", known).unwrap_err()).contains("--n takes a number, not \"lots\""));
        assert!(format!("{:#}", parse(strings(&["--what"]), "USAGE", known).unwrap_err()).contains("unknown argument \"--what\""));
        assert_eq!(parse(strings(&["--help", "--what"]), "USAGE", known).unwrap(), Parsed::Help);
    }

    #[test]
    fn milliseconds_take_decimals_and_refuse_negatives() {
        let millis = |raw: &str| {
            let mut wait = None;
            parse(strings(&["--wait", raw]), "USAGE", |arg, v| {
                wait = Some(v.millis(arg)?);
                Ok(true)
            })
            .map(|_| wait.unwrap_or_default())
        };
        assert_eq!(millis("5").unwrap(), std::time::Duration::from_millis(5));
        assert_eq!(millis("0.5").unwrap(), std::time::Duration::from_micros(500));
        assert!(format!("{:#}", millis("-1").unwrap_err()).contains("--wait takes milliseconds of at least 0, not -1"));
        assert!(format!("{:#}", millis("soon").unwrap_err()).contains("--wait takes milliseconds, not \"soon\""));
    }
}
