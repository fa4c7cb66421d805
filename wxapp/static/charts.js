/* The console's charts (ECharts 5, vendored): each <div class="chart" id="chart-KEY"> draws charts[KEY] from the
   page's <script type="application/json" id="chart-data">:
   - funnel / pyramid (a funnel pointing up) / pie: {data: [{name, value}]};
   - bar / line: {x: [labels], series: [{name, data, type?, axis? (1 = the right-hand axis, e.g. a rate)}], unit?, unit2?}.
   The numbers are also in a table beside or below each chart. */
(function () {
  var el = document.getElementById('chart-data');
  if (!el || !window.echarts) { return; }
  var charts = JSON.parse(el.textContent), made = window.wxcrmCharts = {};
  var palette = ['#1664ff', '#14c9c9', '#f7ba1e', '#9fdb1d', '#78d3f8', '#722ed1', '#f77234', '#86909c'];
  function axes(c) {
    var right = (c.series || []).some(function (s) { return s.axis === 1; });
    var y = [{ type: 'value', name: c.unit || '', minInterval: c.integer ? 1 : 0 }];
    if (right) { y.push({ type: 'value', name: c.unit2 || '', splitLine: { show: false } }); }
    return y;
  }
  function option(c) {
    if (c.kind === 'bar' || c.kind === 'line') {
      return {
        color: palette, tooltip: { trigger: 'axis' }, animation: false,
        legend: (c.series || []).length > 1 ? { top: 0 } : undefined,
        grid: { left: 48, right: 48, top: 36, bottom: 28 },
        xAxis: { type: 'category', data: c.x, axisLabel: { hideOverlap: true } },
        yAxis: axes(c),
        series: c.series.map(function (s) {
          return { name: s.name, type: s.type || c.kind, data: s.data, yAxisIndex: s.axis || 0, connectNulls: true,
                   smooth: false, barMaxWidth: 36, label: { show: c.kind === 'bar' && c.x.length <= 12, position: 'top' } };
        })
      };
    }
    var series;
    if (c.kind === 'pie') {
      series = { type: 'pie', radius: ['35%', '65%'], data: c.data, label: { formatter: '{b}\n{c}' } };
    } else {
      series = { type: 'funnel', sort: c.kind === 'pyramid' ? 'ascending' : 'none', minSize: '10%', gap: 2,
                 data: c.data.map(function (d) { return { name: d.name, value: Math.max(d.value, 0.0001), raw: d.value }; }),
                 label: { show: true, position: 'inside', formatter: function (p) { return p.name + ' ' + p.data.raw; } } };
    }
    return { color: palette, tooltip: { trigger: 'item' }, series: [series], animation: false };
  }
  Object.keys(charts).forEach(function (key) {
    var box = document.getElementById('chart-' + key);
    if (!box) { return; }
    var chart = echarts.init(box, null, { renderer: 'canvas', locale: 'ZH' });
    chart.setOption(option(charts[key]));
    made[key] = chart;
  });
  window.addEventListener('resize', function () { Object.keys(made).forEach(function (k) { made[k].resize(); }); });
})();
