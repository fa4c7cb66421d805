"""The one label table: the Chinese word a person reads for every enum value (STYLE.md).

Pages use ``{{ value|label('work_order_status') }}``, exports and messages :func:`label`; a value
missing here is shown as ``value`` itself, and ``tests/infra/test_labels.py`` renders the pages
and fails when a raw value reaches a person. Ticket statuses have two audiences (what the
customer reads, what staff read); both tables live with the ticket status machine
(``crm_core.service.tickets``) and are mirrored here for staff.
"""
from __future__ import annotations

LABELS: dict[str, dict[str, str]] = {
    "work_order_status": {"assigned": "待处理", "in_progress": "处理中", "completed": "已完成", "cancelled": "已取消"},
    "ticket_status": {"submitted": "待派工", "dispatched": "已派工", "in_progress": "处理中", "waiting_customer": "等待客户",
                      "waiting_parts": "等待配件", "completed": "已完成", "closed": "已关闭", "cancelled": "已取消",
                      "rejected": "已驳回"},
    "signature_purpose": {"fees": "确认收费", "completion": "完工确认"},
    "ticket_kind": {"repair": "报修", "complaint": "投诉", "suggestion": "建议", "consultation": "咨询"},
    "timeline_kind": {"status": "状态变更", "dispatch": "派工", "record": "处理记录", "work_order": "服务工单",
                      "reassign": "转派", "undo": "撤销派工", "rating": "客户评价", "part": "配件", "fee": "费用",
                      "reopen": "重新打开", "note": "备注", "collaborator": "协作", "conversation": "在线客服",
                      "accept": "接单", "arrival": "到达现场", "signature": "客户签字"},
    "activity_kind": {"visit": "拜访", "call": "电话", "meeting": "会议", "task": "任务", "email": "邮件", "wechat": "微信沟通",
                      "demo": "演示", "other": "其他"},
    "activity_status": {"planned": "计划中", "in_progress": "进行中", "done": "已完成", "cancelled": "已取消"},
    "material_status": {"draft": "草稿", "published": "已发布", "archived": "已归档"},
    "campaign_kind": {"campaign": "营销方案", "exhibition": "展会", "talk": "讲座", "promotion": "产品推广"},
    "campaign_status": {"draft": "草稿", "active": "进行中", "paused": "已暂停", "ended": "已结束", "archived": "已归档"},
    "recipient_status": {"pending": "待发送", "queued": "排队中", "sending": "发送中", "sent": "已发送", "failed": "发送失败",
                         "skipped": "未发送"},
    "outbox_status": {"pending": "待发送", "sending": "发送中", "sent": "已发送", "failed": "失败"},
    "outbox_channel": {"wechat_notice": "微信通知", "wechat_template": "微信模板消息", "wechat_custom": "微信客服消息",
                       "staff": "员工通知", "log": "日志", "sms": "短信"},
    "role": {"admin": "管理员", "sales_manager": "销售经理", "salesperson": "销售员", "dispatcher": "服务调度",
             "engineer": "服务工程师", "marketer": "市场专员", "system": "系统"},
    "lead_status": {"new": "新线索", "working": "跟进中", "converted": "已转化", "closed": "已关闭"},
    "opportunity_status": {"open": "进行中", "won": "赢单", "lost": "输单"},
    "checkin_status": {"normal": "正常", "out_of_range": "超出范围", "rejected": "已拒绝"},
    "checkin_kind": {"in": "签到", "out": "签退"},
    "plan_review_status": {"draft": "未提交", "submitted": "待批阅", "reviewed": "已批阅"},
    "plan_period": {"daily": "日计划", "weekly": "周计划", "monthly": "月计划"},
    "import_status": {"draft": "待确认", "queued": "排队中", "running": "导入中", "done": "已完成", "failed": "失败"},
    # where a customer or lead came from (both tables share the words)
    "source": {"manual": "手工录入", "wechat": "微信", "wechat_campaign": "微信营销", "wechat_intent": "微信意向",
               "import": "导入", "website": "官网", "exhibition": "展会", "referral": "转介绍", "other": "其他",
               "lead": "线索转换", "demo": "演示数据", "self_service": "微信自助"},
}


def label(kind: str, value) -> str:
    """The Chinese label of ``value`` in table ``kind`` (the value itself when unknown)."""
    if value is None:
        return ""
    return LABELS.get(kind, {}).get(str(value), str(value))
