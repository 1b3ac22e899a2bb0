/**
 * Line charts drawn as SVG with DOM calls: one line per series over shared time buckets. Colours come from
 * CSS classes (s0…s7), so nothing needs a style attribute. The total of all points is kept in `data-total`
 * on the svg, which makes the chart's content checkable without reading pixels.
 */
const NS = 'http://www.w3.org/2000/svg';
const W = 560;
const H = 220;
const PAD = { left: 44, right: 12, top: 12, bottom: 26 };
const MAX_SERIES = 8;

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function niceMax(value) {
  if (value <= 5) return 5;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * magnitude >= value) return step * magnitude;
  return 10 * magnitude;
}

const clock = (ms) => new Date(ms).toISOString().slice(11, 16);

/**
 * Draws `series` ([{ name, values: number[] }], one value per bucket) over `buckets` (start times in ms)
 * into `container`, with a legend. The largest series are drawn; the rest are summed into "others".
 */
export function lineChart(container, buckets, series, { label = 'requests' } = {}) {
  const sorted = [...series].sort((a, b) => sum(b.values) - sum(a.values));
  let shown = sorted;
  if (sorted.length > MAX_SERIES) {
    const rest = sorted.slice(MAX_SERIES - 1);
    shown = [
      ...sorted.slice(0, MAX_SERIES - 1),
      { name: 'others', values: buckets.map((_, i) => rest.reduce((t, s) => t + (s.values[i] ?? 0), 0)) },
    ];
  }
  const total = shown.reduce((t, s) => t + sum(s.values), 0);
  const top = niceMax(Math.max(0, ...shown.flatMap((s) => s.values)));
  const root = svg('svg', {
    viewBox: `0 0 ${W} ${H}`,
    role: 'img',
    'aria-label': `${label}: ${total} in ${buckets.length} windows`,
    'data-total': total,
  });
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const x = (i) => PAD.left + (buckets.length <= 1 ? plotW / 2 : (i * plotW) / (buckets.length - 1));
  const y = (v) => PAD.top + plotH - (v / top) * plotH;
  for (let g = 0; g <= 4; g++) {
    const v = (top * g) / 4;
    root.append(svg('line', { class: 'gridline', x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v) }));
    root.append(svg('text', { x: PAD.left - 6, y: y(v) + 4, 'text-anchor': 'end' }, formatTick(v)));
  }
  root.append(svg('line', { class: 'axis', x1: PAD.left, x2: W - PAD.right, y1: y(0), y2: y(0) }));
  const ticks = Math.min(buckets.length, 6);
  for (let t = 0; t < ticks; t++) {
    const i = ticks === 1 ? 0 : Math.round((t * (buckets.length - 1)) / (ticks - 1));
    const anchor = ticks > 1 && t === 0 ? 'start' : ticks > 1 && t === ticks - 1 ? 'end' : 'middle';
    root.append(svg('text', { x: x(i), y: H - 8, 'text-anchor': anchor }, clock(buckets[i])));
  }
  if (buckets.length === 0) {
    root.append(svg('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle' }, 'no requests yet'));
  }
  shown.forEach((s, n) => {
    const cls = `s${n % MAX_SERIES}`;
    const points = s.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`);
    if (points.length > 1) root.append(svg('polyline', { class: `series ${cls}`, points: points.join(' ') }));
    s.values.forEach((v, i) => {
      const dot = svg('circle', { class: `dot ${cls}`, cx: x(i), cy: y(v), r: 3 });
      dot.append(svg('title', {}, `${s.name} at ${clock(buckets[i])}: ${v}`));
      root.append(dot);
    });
  });
  const legend = document.createElement('div');
  legend.className = 'legend';
  shown.forEach((s, n) => {
    const item = document.createElement('span');
    const swatch = document.createElement('span');
    swatch.className = `swatch s${n % MAX_SERIES}`;
    item.append(swatch, `${s.name} (${sum(s.values)})`);
    legend.append(item);
  });
  container.replaceChildren(root, legend);
}

function sum(values) {
  return values.reduce((t, v) => t + v, 0);
}

function formatTick(v) {
  return v >= 1000 ? `${(v / 1000).toFixed(v % 1000 === 0 ? 0 : 1)}k` : String(Math.round(v * 10) / 10);
}
