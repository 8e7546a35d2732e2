// The analytics page's script: reads the access token from the URL fragment (never sent to a
// server), asks /analytics/outcomes for the period's figures and draws them with Chart.js.
/* global Chart */
'use strict';
(function () {
  const token = new URLSearchParams(location.hash.slice(1)).get('token');
  const form = document.getElementById('period');
  const status = document.getElementById('status');
  const charts = {};
  const percent = (x) => (x === null || x === undefined ? '' : `${(x * 100).toFixed(1)}%`);
  const number = (x, digits) => (x === null || x === undefined ? '' : Number(x).toFixed(digits));

  function draw(id, config) {
    if (charts[id]) charts[id].destroy();
    charts[id] = new Chart(document.getElementById(id), { ...config, options: { animation: false, responsive: true, ...config.options } });
  }

  function cell(row, text, attributes) {
    const td = document.createElement('td');
    td.textContent = text;
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
          { label: 'concordant', data: specialties.map((s) => s.concordance.concordant.share), backgroundColor: '#4c78a8', order: 1 },
          // A floating bar from the interval's low to its high end, drawn over the share's bar.
          { label: '95% interval', data: specialties.map((s) => s.concordance.concordant.ci95), backgroundColor: 'rgba(0,0,0,.35)', barPercentage: 0.15, grouped: false, order: 0 },
        ],
      },
      options: { scales: { y: { min: 0, max: 1, ticks: { callback: (v) => percent(v) } } } },
    });
    draw('turnaround-chart', {
      type: 'bar',
      data: { labels: report.turnaroundHistogram.map((b) => `≤ ${number(b.upToHours, 1)}`), datasets: [{ label: 'opinions', data: report.turnaroundHistogram.map((b) => b.count), backgroundColor: '#f58518' }] },
    });
    const months = report.strata.filter((s) => s.stratifier === 'month');
    draw('volume-chart', {
      type: 'line',
      data: {
        labels: months.map((s) => s.value),
        datasets: [
          { label: 'opened', data: months.map((s) => s.opened), borderColor: '#54a24b' },
          { label: 'delivered', data: months.map((s) => s.delivered), borderColor: '#4c78a8' },
        ],
      },
    });

    const columns = ['stratifier', 'value', 'opened', 'delivered', ...report.concordanceCodes, 'median h', 'p90 h', 'p99 h', 'waiting', 'overdue', 'requests per case'];
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
      cell(row, s.label || s.value);
      cell(row, String(s.opened), { 'data-figure': 'opened' });
      cell(row, String(s.delivered), { 'data-figure': 'delivered' });
      for (const code of report.concordanceCodes) {
        const share = s.concordance[code];
        cell(row, `${share.count} (${percent(share.share)}${share.ci95 ? `, ${percent(share.ci95[0])}–${percent(share.ci95[1])}` : ''})`, { 'data-figure': `concordance-${code}`, 'data-count': String(share.count) });
      }
      cell(row, number(s.turnaroundHours.median, 2), { 'data-figure': 'turnaround-median' });
      cell(row, number(s.turnaroundHours.p90, 2));
      cell(row, number(s.turnaroundHours.p99, 2));
      cell(row, String(s.waiting), { 'data-figure': 'waiting' });
      cell(row, String(s.overdue), { 'data-figure': 'overdue' });
      cell(row, number(s.informationRequests.perCase, 2), { 'data-figure': 'requests-per-case' });
    }
    document.body.dataset.loaded = 'true';
  }

  async function load() {
    if (!token) {
      status.textContent = 'Open this page as /analytics#token=<access token>.';
      return;
    }
    const query = new URLSearchParams({ by: 'specialty,institution,reason,chapter,month' });
    for (const name of ['periodStart', 'periodEnd']) if (form.elements[name].value) query.set(name, form.elements[name].value);
    status.textContent = '';
    const response = await fetch(`/analytics/outcomes?${query}`, { headers: { authorization: `Bearer ${token}` } });
    const body = await response.json();
    if (!response.ok) {
      status.textContent = (body.issue || []).map((i) => i.details && i.details.text).join('; ') || `HTTP ${response.status}`;
      return;
    }
    form.elements.periodStart.value = body.periodStart;
    form.elements.periodEnd.value = body.periodEnd;
    render(body);
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    load();
  });
  load();
})();
