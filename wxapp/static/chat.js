/* What a follower's message carries besides its text, for the pages that show a conversation as it grows (console
   在线客服 and the staff phone's): the picture, the video, the voice file, the place, the link. The server renders the
   same on the first load (templates/console/_chat_extra.html). ``base``: the conversation's address, ending in /;
   a follower's message's media is base + messages/{id}/media, an agent's picture base + replies/{id}/media.
   Everything the follower sent is set as text or as an attribute, never as HTML. */
window.wxcrmChatExtra = function (div, m, base, mapKey) {
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text) { e.textContent = text; }
    return e;
  }
  var url = base + (m.direction === 'out' ? 'replies/' : 'messages/') + m.id + '/media';
  if (m.media === 'image') {
    var a = el('a', { 'class': 'chat-media', href: url, target: '_blank', rel: 'noopener' });
    a.appendChild(el('img', { 'class': 'chat-img', src: url + '?thumb=1', alt: '图片', loading: 'lazy' }));
    div.appendChild(a);
  } else if (m.media === 'video') {
    div.appendChild(el('video', { 'class': 'chat-video', controls: '', preload: 'none', src: url }));
  } else if (m.media === 'voice') {
    div.appendChild(el('a', { 'class': 'chat-voice', href: url, download: '' }, '下载语音'));
    if (!m.recognition) { div.appendChild(el('span', { 'class': 'muted' }, ' （无语音识别文字）')); }
  } else if (m.location) {
    var p = m.location, box = el('span', { 'class': 'chat-location' });
    if (mapKey) {
      box.appendChild(el('img', { 'class': 'chat-map', alt: p.label || '位置', loading: 'lazy',
        src: 'https://apis.map.qq.com/ws/staticmap/v2/?center=' + p.lat + ',' + p.lng + '&zoom=15&size=240*120&markers=color:red|' +
          p.lat + ',' + p.lng + '&key=' + encodeURIComponent(mapKey) }));
    }
    box.appendChild(el('span', { 'class': 'muted' }, p.lat.toFixed(5) + ', ' + p.lng.toFixed(5) + ' '));
    box.appendChild(el('a', { href: 'https://apis.map.qq.com/uri/v1/marker?marker=coord:' + p.lat + ',' + p.lng + ';title:' +
      encodeURIComponent(p.label || '') + '&referer=wxcrm', target: '_blank', rel: 'noopener noreferrer' }, '在地图中查看'));
    div.appendChild(box);
  } else if (m.link) {
    var l = el('span', { 'class': 'chat-link' });
    l.appendChild(m.link.url ? el('a', { href: m.link.url, target: '_blank', rel: 'noopener noreferrer nofollow' }, m.link.title)
      : el('span', {}, m.link.title));
    if (m.link.description) { l.appendChild(el('span', { 'class': 'muted' }, ' ' + m.link.description)); }
    div.appendChild(l);
  }
};
