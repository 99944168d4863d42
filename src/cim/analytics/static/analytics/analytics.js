// The RFM grid: customers per recency (rows) and frequency (columns) score, from the page's JSON.
(function () {
  "use strict";
  var element = document.getElementById("rfm-grid");
  var data = document.getElementById("rfm-grid-data");
  if (!element || !data || !window.echarts) {
    return;
  }
  var cells = JSON.parse(data.textContent);
  var scores = ["1", "2", "3", "4", "5"];
  var top = Math.max.apply(null, cells.map(function (cell) { return cell.customers; }).concat([1]));
  var chart = window.echarts.init(element);
  chart.setOption({
    tooltip: {
      formatter: function (item) {
        return "R " + item.value[1] + " · F " + item.value[0] + ": " + item.value[2];
      }
    },
    grid: { left: 48, right: 16, top: 16, bottom: 40 },
    xAxis: { type: "category", data: scores, name: element.dataset.frequency, nameLocation: "middle", nameGap: 26 },
    yAxis: { type: "category", data: scores, name: element.dataset.recency, nameLocation: "middle", nameGap: 30 },
    visualMap: { min: 0, max: top, show: false, inRange: { color: ["#f8f9fa", "#0d6efd"] } },
    series: [{
      type: "heatmap",
      label: { show: true },
      data: cells.map(function (cell) { return [cell.f - 1, cell.r - 1, cell.customers]; })
    }]
  });
  window.addEventListener("resize", function () { chart.resize(); });
})();
