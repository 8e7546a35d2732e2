// The analytics page's script: signs the analyst in (analyticsSignIn, from web/analytics/sign-in.ts: the
// token is kept in this tab's sessionStorage, never in the URL), asks /analytics/outcomes for the
// period's figures and draws them with Chart.js.
/* global Chart */
'use strict';
(function () {
  const auth = window.analyticsSignIn;
  const signIn = document.getElementById('sign-in');
  const outcomes = document.getElementById('outcomes');
  const form = document.getElementById('period');
  const charts = {};
  const percent = (x) => (x === null || x === undefined ? '' : `${(x * 100).toFixed(1)}%`);
  const number = (x, digits) => (x === null || x === undefined ? '' : Number(x).toFixed(digits));
  // Turnaround in bins a person plans by; each counted bucket (10% wide) falls in the bin of its upper edge.
  const turnaroundBins = [
    [1, '≤ 1 h'],
    [4, '1–4 h'],
    [12, '4–12 h'],
    [24, '12–24 h'],
    [48, '1–2 days'],
    [72, '2–3 days'],
    [168, '3–7 days'],
    [336, '1–2 weeks'],
    [672, '2–4 weeks'],
    [Infinity, '> 4 weeks'],
  ];

  function showSignIn(message) {
    outcomes.hidden = true;
    signIn.hidden = false;
    signIn.querySelector('.status').textContent = message || '';
  }

  // Draws each share's Wilson interval as a whisker over its bar.
  const intervals = {
    id: 'intervals',
    afterDatasetsDraw(chart) {
      const ci = chart.data.datasets[0].intervals;
      if (!ci) return;
      const { ctx, scales } = chart;
      ctx.save();
      ctx.strokeStyle = '#222';
      ctx.lineWidth = 1.5;
      chart.getDatasetMeta(0).data.forEach((bar, i) => {
        if (!ci[i]) return;
        const [low, high] = ci[i].map((v) => scales.y.getPixelForValue(v));
        ctx.beginPath();
        ctx.moveTo(bar.x, low);
        ctx.lineTo(bar.x, high);
        for (const y of [low, high]) {
          ctx.moveTo(bar.x - 6, y);
          ctx.lineTo(bar.x + 6, y);
        }
        ctx.stroke();
      });
      ctx.restore();
    },
  };

  function draw(id, config) {
    if (charts[id]) charts[id].destroy();
    charts[id] = new Chart(document.getElementById(id), { ...config, options: { animation: false, responsive: true, ...config.options } });
  }

  function cell(row, text, attributes, code) {
    const td = document.createElement('td');
    td.textContent = text;
    if (code && code !== text) {
      const small = document.createElement('span');
      small.className = 'code';
      small.textContent = ` ${code}`;
      td.appendChild(small);
    }
    for (const [name, value] of Object.entries(attributes || {})) td.setAttribute(name, value);
    row.appendChild(td);
  }

  function render(report) {
    const whole = report.strata.find((s) => s.stratifier === 'all');
    const summary = document.getElementById('summary');
    summary.textContent = '';
    const figures = [
      ['opened', 'cases opened', whole.opened],
      ['delivered', 'opinions delivered', whole.delivered],
      ['waiting', 'waiting', whole.waiting],
      ['overdue', 'overdue', whole.overdue],
    ];
    for (const [name, text, value] of figures) {
      const span = document.createElement('span');
      span.dataset.figure = name;
      span.textContent = String(value);
      summary.append(span, ` ${text}; `);
    }
    summary.append(`${report.months[0]} to ${report.months[1]}.`);

    const specialties = report.strata.filter((s) => s.stratifier === 'specialty' && s.delivered > 0);
    draw('concordance-chart', {
      type: 'bar',
      data: {
        labels: specialties.map((s) => s.label || s.value),
        datasets: [
          {
            label: 'concordant share',
            data: specialties.map((s) => s.concordance.concordant.share),
            intervals: specialties.map((s) => s.concordance.concordant.ci95),
            backgroundColor: '#4c78a8',
          },
        ],
      },
      options: {
        scales: { y: { min: 0, max: 1, ticks: { callback: (v) => percent(v) } } },
        plugins: {
          tooltip: {
            callbacks: {
              label: (c) => {
                const ci = c.dataset.intervals[c.dataIndex];
                return `${percent(c.raw)} (95% ${percent(ci[0])}–${percent(ci[1])})`;
              },
            },
          },
        },
      },
      plugins: [intervals],
    });
    const counts = turnaroundBins.map(() => 0);
    for (const bucket of report.turnaroundHistogram) counts[turnaroundBins.findIndex(([upTo]) => bucket.upToHours <= upTo)] += bucket.count;
    draw('turnaround-chart', {
      type: 'bar',
      data: { labels: turnaroundBins.map(([, label]) => label), datasets: [{ label: 'opinions delivered', data: counts, backgroundColor: '#f58518' }] },
      options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: 'opinions' } } } },
    });
    // Every month of the period, those without cases at zero.
    const byMonth = new Map(report.strata.filter((s) => s.stratifier === 'month').map((s) => [s.value, s]));
    const months = [];
    for (let m = new Date(`${report.months[0]}-01T00:00:00Z`); m.toISOString().slice(0, 7) <= report.months[1]; m.setUTCMonth(m.getUTCMonth() + 1))
      months.push(m.toISOString().slice(0, 7));
    const count = (month, figure) => (byMonth.get(month) || { [figure]: 0 })[figure];
    draw('volume-chart', {
      type: 'line',
      data: {
        labels: months,
        datasets: [
          { label: 'opened', data: months.map((m) => count(m, 'opened')), borderColor: '#54a24b' },
          { label: 'opinions delivered', data: months.map((m) => count(m, 'delivered')), borderColor: '#4c78a8' },
        ],
      },
      options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    });

    const columns = [
      'by',
      'value',
      'opened',
      'delivered',
      ...report.concordanceCodes,
      'median hours',
      'p90 hours',
      'p99 hours',
      'waiting',
      'overdue',
      'requests per case',
    ];
    const head = document.querySelector('#strata thead');
    head.textContent = '';
    const headRow = head.insertRow();
    for (const name of columns) {
      const th = document.createElement('th');
      th.textContent = name;
      headRow.appendChild(th);
    }
    const body = document.querySelector('#strata tbody');
    body.textContent = '';
    for (const s of report.strata) {
      const row = body.insertRow();
      row.dataset.stratum = `${s.stratifier}|${s.value}`;
      cell(row, s.stratifier);
      cell(row, s.label || s.value, { 'data-figure': 'label' }, s.label && !s.value.startsWith('Organization/') ? s.value : undefined);
      cell(row, String(s.opened), { 'data-figure': 'opened' });
      cell(row, String(s.delivered), { 'data-figure': 'delivered' });
      for (const code of report.concordanceCodes) {
        const share = s.concordance[code];
        cell(row, `${share.count} (${percent(share.share)}${share.ci95 ? `, ${percent(share.ci95[0])}–${percent(share.ci95[1])}` : ''})`, {
          'data-figure': `concordance-${code}`,
          'data-count': String(share.count),
        });
      }
      cell(row, number(s.turnaroundHours.median, 1), { 'data-figure': 'turnaround-median' });
      cell(row, number(s.turnaroundHours.p90, 1));
      cell(row, number(s.turnaroundHours.p99, 1));
      cell(row, String(s.waiting), { 'data-figure': 'waiting' });
      cell(row, String(s.overdue), { 'data-figure': 'overdue' });
      cell(row, number(s.informationRequests.perCase, 2), { 'data-figure': 'requests-per-case' });
    }
    document.body.dataset.loaded = 'true';
  }

  async function load() {
    const token = auth.accessToken();
    if (!token) return showSignIn();
    signIn.hidden = true;
    outcomes.hidden = false;
    const status = form.querySelector('.status');
    const query = new URLSearchParams({ by: 'specialty,institution,reason,chapter,month' });
    for (const name of ['periodStart', 'periodEnd']) if (form.elements[name].value) query.set(name, form.elements[name].value);
    status.textContent = '';
    const response = await fetch(`/analytics/outcomes?${query}`, { headers: { authorization: `Bearer ${token}` } });
    const body = await response.json();
    if (response.status === 401) return showSignIn('The service did not accept the sign-in (it has expired, or the service changed its key): sign in again.');
    if (!response.ok) {
      status.textContent = (body.issue || []).map((i) => i.details && i.details.text).join('; ') || `HTTP ${response.status}`;
      return;
    }
    form.elements.periodStart.value = body.periodStart;
    form.elements.periodEnd.value = body.periodEnd;
    render(body);
  }

  signIn.addEventListener('submit', (event) => {
    event.preventDefault();
    auth.signIn();
  });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    load();
  });
  document.getElementById('sign-out').addEventListener('click', () => auth.signOut());
  // Coming back from the authorization server with a code, or with the reason it refused.
  if (!auth) showSignIn('The sign-in of this page is not built on this server: run npm run build.');
  else auth.completeSignIn().then((refused) => (refused ? showSignIn(refused) : load()));
})();
