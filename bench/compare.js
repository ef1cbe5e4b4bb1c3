/**
 * Turns a benchmark report into rows of ours / each peer / ratio, and prints them. The ratio is ours divided
 * by the best peer's median: the highest for a rate, the lowest for a time, a memory or a CPU cost. So a
 * ratio above 1 is ahead for a rate and behind for the rest; the `better` column says which way each goes.
 */

const fmtNumber = (value, digits) =>
  value.toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits });

function cell(entry, digits) {
  if (!entry) return '-';
  const { stats, mark = '', note = '' } = entry;
  const range =
    stats.runs.length > 1 ? ` (${fmtNumber(stats.min, digits)}-${fmtNumber(stats.max, digits)})` : '';
  return `${fmtNumber(stats.median, digits)}${range}${mark}${note ? ` ${note}` : ''}`;
}

/** The peer entry that is best for this row: highest median for `higher`, lowest for `lower`. */
function bestOf(entries, better) {
  let best;
  for (const entry of entries) {
    if (!entry) continue;
    if (
      !best ||
      (better === 'higher' ? entry.stats.median > best.stats.median : entry.stats.median < best.stats.median)
    )
      best = entry;
  }
  return best;
}

function row(figure, unit, better, digits, ours, peers) {
  const best = bestOf(Object.values(peers), better);
  return {
    figure,
    unit,
    better,
    digits,
    ours,
    peers,
    ratio: ours && best ? ours.stats.median / best.stats.median : null,
  };
}

/** Marks a figure whose runs were cut short (partial drain) or fell behind (latency): read it with care. */
const flagged = (stats, count) => ({ stats, mark: count > 0 ? '*' : '' });

function compare(report, peerNames) {
  const rows = [];
  const processing = report.processing;
  if (processing) {
    const ours = (setting) => processing.ours.find((p) => p.setting === setting);
    const peer = (name, setting) => processing.peers[name]?.[setting];
    const peersOf = (setting, pick) =>
      Object.fromEntries(peerNames.map((name) => [name, peer(name, setting) && pick(peer(name, setting))]));
    for (const [setting, title] of [
      ['best', 'best setting'],
      ['defaults', 'defaults'],
    ]) {
      const o = ours(setting);
      if (!o) continue;
      rows.push(
        row(
          `processing, ${title}`,
          'jobs/s',
          'higher',
          0,
          flagged(o.jobs_per_second, o.partial_runs),
          peersOf(setting, (p) => flagged(p.jobs_per_second, p.partial_runs)),
        ),
      );
    }
    for (const other of [ours('c100'), ours('two-workers')]) {
      if (!other) continue;
      rows.push(
        row(
          `processing, ours: ${other.label}`,
          'jobs/s',
          'higher',
          0,
          flagged(other.jobs_per_second, other.partial_runs),
          {},
        ),
      );
    }
    for (const [setting, title] of [
      ['best', 'best setting'],
      ['defaults', 'defaults'],
    ]) {
      const o = ours(setting);
      if (!o) continue;
      rows.push(
        row(
          `worker peak RSS, ${title}`,
          'MB',
          'lower',
          0,
          { stats: o.peak_rss_mb },
          peersOf(setting, (p) => ({ stats: p.peak_rss_mb })),
        ),
      );
      rows.push(
        row(
          `worker CPU per 1,000 jobs, ${title}`,
          'ms',
          'lower',
          0,
          { stats: o.cpu_ms_per_1000_jobs },
          peersOf(setting, (p) => ({ stats: p.cpu_ms_per_1000_jobs })),
        ),
      );
      if (o.server_cpu_ms_per_1000_jobs) {
        rows.push(
          row(
            `database CPU per 1,000 jobs, ${title}`,
            'ms',
            'lower',
            0,
            { stats: o.server_cpu_ms_per_1000_jobs },
            peersOf(setting, (p) =>
              p.server_cpu_ms_per_1000_jobs ? { stats: p.server_cpu_ms_per_1000_jobs } : undefined,
            ),
          ),
        );
      }
    }
  }
  const latency = report.pickup_latency;
  if (latency) {
    // A peer is compared at whichever of its two settings starts jobs sooner.
    const peersAt = (key) =>
      Object.fromEntries(
        peerNames.map((name) => [
          name,
          bestOf(
            Object.values(latency.peers[name] ?? {}).map((s) => ({
              ...flagged(s[key], s.behind_runs),
              note: `[${s.setting}]`,
            })),
            'lower',
          ),
        ]),
      );
    for (const p of ['p50', 'p95', 'p99']) {
      const key = `${p}_ms`;
      rows.push(
        row(
          `enqueue-to-start at ${latency.ours.rate_per_second}/s, ${p}`,
          'ms',
          'lower',
          2,
          flagged(latency.ours[key], latency.ours.behind_runs),
          peersAt(key),
        ),
      );
    }
    // The same worker with jobs inserted as the peers insert theirs: what the worker itself takes.
    const library = latency.ours_library;
    if (library) {
      for (const p of ['p50', 'p99']) {
        const key = `${p}_ms`;
        rows.push(
          row(
            `  ${p}, ours inserted by a plain client as the peers insert`,
            'ms',
            'lower',
            2,
            flagged(library[key], library.behind_runs),
            peersAt(key),
          ),
        );
      }
    }
  }
  const http = report.http;
  if (http) {
    const peersOf = (pick) =>
      Object.fromEntries(
        peerNames.map((name) => [name, http.peers[name] && { stats: pick(http.peers[name]) }]),
      );
    const s = http.ours.single;
    rows.push(
      row(
        `single create, ${s.connections} in flight (ours: POST /jobs)`,
        'per s',
        'higher',
        0,
        { stats: s.requests_per_second },
        peersOf((p) => p.single.requests_per_second),
      ),
    );
    rows.push(
      row(
        '  latency p99',
        'ms',
        'lower',
        1,
        { stats: s.p99_ms },
        peersOf((p) => p.single.p99_ms),
      ),
    );
    const b = http.ours.batch;
    // Each of our batch figures beside the same peer figures: their calls have one form only.
    for (const [figure, ours] of [
      [
        `batch create of ${b.jobs_per_request.toLocaleString('en')}, ${b.connections} in flight (ours: POST /jobs/batch)`,
        b,
      ],
      ['  the same, answered with the ids only (ours: Prefer: return=minimal)', http.ours.batch_minimal],
    ]) {
      if (ours)
        rows.push(
          row(
            figure,
            'jobs/s',
            'higher',
            0,
            { stats: ours.jobs_per_second },
            peersOf((p) => p.batch.jobs_per_second),
          ),
        );
    }
    // Where the batches' CPU goes: on 2 cores the creating process and the database share the machine.
    const costs = [
      ['    creating process CPU per 1,000 jobs (ours: the api)', 'cpu_ms_per_1000_jobs'],
      ['    database CPU per 1,000 jobs', 'server_cpu_ms_per_1000_jobs'],
    ];
    for (const [label, ours] of [
      ['answered in full', b],
      ['ids only', http.ours.batch_minimal],
    ]) {
      for (const [figure, key] of costs) {
        if (!ours?.[key]) continue;
        // Peers without the figure (a server not on this machine) are left out, not shown as 0.
        const peerCosts = Object.fromEntries(
          Object.entries(peersOf((p) => p.batch[key])).filter(([, entry]) => entry?.stats),
        );
        rows.push(row(`${figure}, batch ${label}`, 'ms', 'lower', 1, { stats: ours[key] }, peerCosts));
      }
    }
    if (http.ours.api_peak_rss_mb) {
      rows.push(
        row(
          '  api peak RSS over its single and batch creates',
          'MB',
          'lower',
          0,
          { stats: http.ours.api_peak_rss_mb },
          {},
        ),
      );
    }
  }
  const grown = report.grown_table;
  if (grown) {
    rows.push(
      row(
        `processing with ${grown.finished_rows.toLocaleString('en')} finished rows (ours: ${grown.label}; ${(grown.ratio_to_empty * 100).toFixed(0)}% of an empty table's ${Math.round(grown.empty_table.jobs_per_second.median).toLocaleString('en')} in the same runs)`,
        'jobs/s',
        'higher',
        0,
        { stats: grown.jobs_per_second },
        {},
      ),
    );
    const single = (value) => ({ stats: { median: value, min: value, max: value, runs: [value] } });
    if (grown.claims) {
      const { empty_table: empty, grown_table: full } = grown.claims;
      rows.push(
        row(
          `  claim of ${full.jobs_per_claim} p99 over ${full.claims} claims (${((full.p99_ms / empty.p99_ms) * 100).toFixed(0)}% of empty: ${empty.p99_ms.toFixed(2)} ms; p50 ${full.p50_ms.toFixed(2)} against ${empty.p50_ms.toFixed(2)})`,
          'ms',
          'lower',
          2,
          single(full.p99_ms),
          {},
        ),
      );
    }
    const { listing } = grown;
    const beside = (page) => ` (empty table: ${listing.empty_table[page].p99_ms.median.toFixed(2)} ms)`;
    for (const [page, what] of [
      ['first_page', 'GET /jobs p99, first page'],
      ['page_100', 'GET /jobs p99, 100th page'],
      ['failed_page', 'GET /jobs?state=failed p99, first page: its jobs the oldest'],
    ]) {
      rows.push(row(`  ${what}${beside(page)}`, 'ms', 'lower', 2, { stats: listing[page].p99_ms }, {}));
    }
  }
  return rows;
}

function formatComparison(rows, peerNames) {
  const header = ['figure', 'unit', 'better', 'ours', ...peerNames, 'ours / best peer'];
  const lines = [header];
  for (const r of rows) {
    lines.push([
      r.figure,
      r.unit,
      r.better,
      cell(r.ours, r.digits),
      ...peerNames.map((name) => cell(r.peers[name], r.digits)),
      r.ratio === null ? '-' : r.ratio.toFixed(2),
    ]);
  }
  const widths = header.map((_, i) => Math.max(...lines.map((line) => line[i].length)));
  return lines
    .map((line) =>
      line
        .map((text, i) => text.padEnd(widths[i]))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

module.exports = { compare, formatComparison };
