/* A stand-in for WeChat's JS-SDK (res.wx.qq.com/open/js/jweixin-1.6.0.js) as the WeChat client runs it, for browser
   tests: wx.config is checked by the sandbox (/sandbox/jssdk/config: AppID, URL domain, signature) and only then
   wx.ready fires (else wx.error); uploadImage hands the picture to the sandbox, which keeps it as a media id the
   server downloads with media/get, as a real serverId; getLocation answers window.__wxLocation (GCJ-02). Every call
   is recorded in window.__wxCalls. As in WeChat, an API the page did not list in wx.config's jsApiList fails with
   "<name>:permission denied". */
(function () {
  var ready = [], errors = [], state = null, calls = window.__wxCalls = [], listed = [];
  function allowed(name, o) {
    if (listed.indexOf(name) >= 0) { return true; }
    calls.push([name + ':permission denied']);
    if (o && o.fail) { setTimeout(function () { o.fail({ errMsg: name + ':permission denied' }); }, 10); }
    return false;
  }
  window.wx = {
    config: function (c) {
      calls.push(['config', c.jsApiList, !!c.beta]);
      listed = c.jsApiList || [];
      // inside 企业微信 (its user agent says wxwork) the WeCom client checks it against the company's ticket
      fetch(/wxwork/i.test(navigator.userAgent) ? '/sandbox/wecom/jssdk/config' : '/sandbox/jssdk/config', { method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ appId: c.appId, timestamp: c.timestamp, nonceStr: c.nonceStr, signature: c.signature, url: location.href.split('#')[0] }) })
        .then(function (r) { return r.json(); }).then(function (r) {
          state = r.errMsg; calls.push(['config:result', r.errMsg]);
          (r.errMsg === 'config:ok' ? ready : errors).forEach(function (f) { f(r); });
        });
    },
    ready: function (f) { if (state === 'config:ok') { f(); } else { ready.push(f); } },
    error: function (f) { errors.push(f); },
    getLocation: function (o) { if (!allowed('getLocation', o)) { return; } calls.push(['getLocation', o.type]); setTimeout(function () { o.success(window.__wxLocation); }, 10); },
    chooseImage: function (o) { if (!allowed('chooseImage', o)) { return; } calls.push(['chooseImage', o.count]); setTimeout(function () { o.success({ localIds: ['wxLocalResource://photo-1'] }); }, 10); },
    uploadImage: function (o) {
      if (!allowed('uploadImage', o)) { return; }
      calls.push(['uploadImage', o.localId]);
      fetch('/sandbox/media', { method: 'POST' }).then(function (r) { return r.json(); }).then(function (r) { o.success({ serverId: r.media_id }); });
    },
    openLocation: function (o) { if (allowed('openLocation', o)) { calls.push(['openLocation', o]); } },
    updateAppMessageShareData: function (o) { if (allowed('updateAppMessageShareData', o)) { calls.push(['updateAppMessageShareData', o]); } },
    updateTimelineShareData: function (o) { if (allowed('updateTimelineShareData', o)) { calls.push(['updateTimelineShareData', o]); } }
  };
})();
