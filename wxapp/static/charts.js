/* The console's charts (ECharts 5, vendored): each <div class="chart" id="chart-KEY"> draws charts[KEY] from the
   page's <script type="application/json" id="chart-data"> — a funnel, a pyramid (a funnel pointing up) or a pie.
   The numbers are also in the table beside each chart. */
(function () {
  var el = document.getElementById('chart-data');
  if (!el || !window.echarts) { return; }
  var charts = JSON.parse(el.textContent), made = window.wxcrmCharts = {};
  var palette = ['#1664ff', '#14c9c9', '#78d3f8', '#9fdb1d', '#f7ba1e', '#722ed1', '#f77234', '#86909c'];
  Object.keys(charts).forEach(function (key) {
    var box = document.getElementById('chart-' + key), c = charts[key];
    if (!box) { return; }
    var series;
    if (c.kind === 'pie') {
      series = { type: 'pie', radius: ['35%', '65%'], data: c.data, label: { formatter: '{b}\n{c}' } };
    } else {
      series = { type: 'funnel', sort: c.kind === 'pyramid' ? 'ascending' : 'none', minSize: '10%', gap: 2,
                 data: c.data.map(function (d) { return { name: d.name, value: Math.max(d.value, 0.0001), raw: d.value }; }),
                 label: { show: true, position: 'inside', formatter: function (p) { return p.name + ' ' + p.data.raw; } } };
    }
    var chart = echarts.init(box, null, { renderer: 'canvas', locale: 'ZH' });
    chart.setOption({ color: palette, tooltip: { trigger: 'item' }, series: [series], animation: false });
    made[key] = chart;
  });
  window.addEventListener('resize', function () { Object.keys(made).forEach(function (k) { made[k].resize(); }); });
})();
