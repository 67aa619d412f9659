//! `I/N`: part I of N, for the flags that split work over machines (`check --shard`, the
//! state space's split; `mutants --shard` and `gate --part`, every N-th item of a list).

/// Parse `I/N` (0 <= I < N) given to `flag` (e.g. `--shard`).
pub fn parse_part(flag: &str, s: &str) -> Result<(usize, usize), String> {
    let word = flag.trim_start_matches('-');
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| format!("{flag} takes I/N (e.g. 0/4), not '{s}'"))?;
    let i: usize = i
        .trim()
        .parse()
        .map_err(|_| format!("bad {word} index in '{s}'"))?;
    let n: usize = n
        .trim()
        .parse()
        .map_err(|_| format!("bad {word} count in '{s}'"))?;
    if n == 0 || i >= n {
        return Err(format!("{flag} {s}: need 0 <= I < N"));
    }
    Ok((i, n))
}

/// Every `n`-th item of `items`, starting at the `i`-th.
pub fn every_nth<T>(items: Vec<T>, (i, n): (usize, usize)) -> Vec<T> {
    items
        .into_iter()
        .enumerate()
        .filter(|(k, _)| k % n == i)
        .map(|(_, x)| x)
        .collect()
}
