"""The ``wxcrm`` command: a Flask CLI group over ``create_app`` (``db`` comes from Flask-Migrate)."""
from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext

from crm_core.db import db


def _create_app():
    from wxapp import ConfigError, create_app

    try:
        return create_app()
    except ConfigError as exc:
        click.echo(f"配置错误 / configuration error: {exc}", err=True)
        sys.exit(2)


@click.group(cls=FlaskGroup, create_app=_create_app, add_version_option=False)
def cli():
    """蓝云 WeChat CRM: database, demo data, users, worker."""


@cli.command("demo")
@click.option("--password", default=None, help="Password for every demo login (default demo123456).")
@with_appcontext
def demo_command(password):
    """Load (or refresh) the demo organisation and print its logins."""
    from crm_core.demo import DEMO_PASSWORD, load_demo

    rows = load_demo(password or DEMO_PASSWORD, documents=True)
    db.session.commit()
    base = current_app.config["PUBLIC_BASE_URL"]
    click.echo(f"演示组织已就绪：{base}/console/")
    click.echo(f"{'login':<22}{'password':<14}who")
    for login, pw, who in rows:
        click.echo(f"{login:<22}{pw:<14}{who}")


@cli.group("user")
def user_group():
    """Manage users."""


@user_group.command("create")
@click.argument("username")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--role", "roles", multiple=True, default=["admin"], show_default=True, help="Role code; repeatable.")
@click.option("--name", default=None, help="Employee name (default: the username).")
@click.option("--org-code", default="default", show_default=True)
@click.option("--org-name", default="我的公司", show_default=True)
@with_appcontext
def user_create(username, password, roles, name, org_code, org_name):
    """Create a user with an employee record (for a real deployment)."""
    from sqlalchemy import select

    from crm_core.errors import DomainError
    from crm_core.org.models import Organization
    from crm_core.org.organization import (
        create_user,
        ensure_builtin_roles,
        get_or_create_organization,
        upsert_department,
        upsert_employee,
        upsert_position,
    )

    ensure_builtin_roles()
    org = db.session.scalars(select(Organization).where(Organization.code == org_code)).first()
    if org is None:
        org = get_or_create_organization(org_code, org_name)
    dept = upsert_department(org, "HQ", "总部")
    pos = upsert_position(org, f"P-{username}"[:32], "管理员" if "admin" in roles else "职员", dept)
    emp = upsert_employee(org, f"U-{username}"[:32], name or username, pos)
    try:
        user = create_user(org, username, password, list(roles), emp)
    except DomainError as exc:
        db.session.rollback()
        raise click.ClickException(exc.message)
    db.session.commit()
    click.echo(f"用户 {user.username} 已创建（组织 {org.name}，角色 {', '.join(roles)}）。")


@cli.command("worker")
@click.option("--burst", is_flag=True, help="Exit when the queue is empty.")
@click.option("--queue", "queues", multiple=True, default=["wxcrm"], show_default=True)
@with_appcontext
def worker_command(burst, queues):
    """Run an RQ worker with its scheduler, inside the app context (needs REDIS_URL).

    Fork-safe: the ORM's mappers are configured before any thread starts or any work horse is
    forked (a horse forked while the ticker thread held the mapper-configuration lock hung until
    RQ's job timeout), and each horse disposes the engine's inherited connections. It survives
    Redis: when Redis goes away the worker waits with backoff and starts again, instead of exiting.
    """
    import threading

    from sqlalchemy.orm import configure_mappers

    from crm_core import jobs

    if current_app.extensions.get("wxcrm_redis") is None:
        raise click.ClickException("wxcrm worker 需要 REDIS_URL；未设置时后台任务在 Web 进程内运行（嵌入模式）。")
    import redis

    # its own connection: RQ blocks on the queue longer than the web tier's socket timeout allows
    conn = redis.Redis.from_url(current_app.config["REDIS_URL"], socket_connect_timeout=2, health_check_interval=30)
    configure_mappers()  # before the ticker thread and before the first fork
    db.engine.dispose()
    stop = threading.Event()
    app = current_app._get_current_object()
    if not burst:
        jobs.run_worker_ticker(stop, app.app_context)
    try:
        run_worker(conn, list(queues), burst=burst)
    finally:
        stop.set()


class _Worker:
    """Made on first use. By default RQ's ``SimpleWorker``: jobs run in the worker process itself,
    with the database pool kept between them — a forked work horse per job (RQ's ``Worker``) cost
    a fork and a new PostgreSQL connection for every notice, and capped a worker at ~15 jobs/s
    (bench/write_mix.py). ``WXCRM_WORKER_FORK=1`` keeps the fork per job (a job that crashes the
    interpreter then takes only its horse down); that horse drops the parent's connections."""

    cls = None

    @classmethod
    def get(cls):
        if cls.cls is None:
            import os

            import redis
            from rq import SimpleWorker, Worker

            class Registered:
                """A Redis that restarted empty forgot the worker: its next heartbeat registers it again
                (or /healthz, which lists registered workers, would say none beats while it works)."""

                def heartbeat(self, timeout=None, pipeline=None):
                    try:
                        if not self.connection.sismember(self.redis_workers_keys, self.key):
                            self.connection.delete(self.key)
                            self.register_birth()
                    except redis.exceptions.RedisError:
                        pass  # Redis away: the loop in run_worker deals with it
                    return super().heartbeat(timeout, pipeline)

            if os.environ.get("WXCRM_WORKER_FORK") == "1":
                class GatewayWorker(Registered, Worker):
                    def main_work_horse(self, job, queue):
                        db.engine.dispose(close=False)  # the parent's pooled connections are not the horse's
                        return super().main_work_horse(job, queue)
            else:
                class GatewayWorker(Registered, SimpleWorker):
                    pass

            cls.cls = GatewayWorker
        return cls.cls


def run_worker(conn, queues: list[str], *, burst: bool = False, max_wait: float = 10.0) -> None:
    """Work until stopped; when Redis is unreachable, wait (1 s, doubling to ``max_wait``) and resume."""
    import logging
    import time

    import redis

    log = logging.getLogger("wxcrm.worker")
    wait = 1.0
    while True:
        worker = None
        try:
            worker = _Worker.get()(queues, connection=conn)
            worker.work(with_scheduler=True, burst=burst)
        except redis.exceptions.ConnectionError as exc:
            log.warning("worker lost Redis: %s", exc)
        if burst or (worker is not None and (worker._stop_requested or worker._shutdown_requested_date)):
            return
        try:  # RQ quits on an error it does not handle (Redis gone mid-job): start again once Redis answers
            conn.ping()
            log.warning("worker loop ended without a stop request; starting again")
        except redis.exceptions.ConnectionError:
            log.warning("Redis unreachable; the worker retries in %.0f s", wait)
            time.sleep(wait)
            wait = min(max_wait, wait * 2)
            continue
        wait = 1.0
        time.sleep(0.5)


@cli.group("collision")
def collision_group():
    """Collision-check (撞单) maintenance."""


@collision_group.command("reindex")
@click.option("--org-code", default=None, help="Only this organisation (default: all).")
@with_appcontext
def collision_reindex(org_code):
    """Rebuild the match keys of every lead, customer and opportunity (after imports or
    changes to the normalisation rules)."""
    from sqlalchemy import select

    from crm_core.customers.collision import reindex_org
    from crm_core.org.models import Organization

    stmt = select(Organization)
    if org_code:
        stmt = stmt.where(Organization.code == org_code)
    for org in db.session.scalars(stmt).all():
        counts = reindex_org(org.id)
        db.session.commit()
        click.echo(f"{org.name}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


@cli.group("wechat")
def wechat_group():
    """WeChat official account."""


@wechat_group.group("menu")
def menu_group():
    """The custom menu (wxapp/official_account/menu.json)."""


@menu_group.command("push")
@with_appcontext
def menu_push():
    """Push the menu in the repository to WeChat (or the sandbox)."""
    import json

    from wxapp.official_account.client import get_client
    from wxapp.official_account.sandbox import menu_definition

    menu = json.loads(json.dumps(menu_definition()).replace("{PUBLIC_BASE_URL}", current_app.config["PUBLIC_BASE_URL"]))
    get_client().menu.create(menu)
    click.echo("菜单已推送：" + "、".join(b["name"] for b in menu["button"]))


@wechat_group.command("spool-recover")
@with_appcontext
def spool_recover():
    """Write callback spool files left by stopped web processes (WXCRM_SPOOL_DIR) into the database."""
    from wxapp.official_account import fastpath

    sp = fastpath.spool()
    n = sp.recover()
    click.echo(f"{sp.directory}: 接管并写入 {n} 条消息记录")


@cli.command("simulate")
@click.argument("kind", type=click.Choice(["follow", "unfollow", "scan", "text", "click", "location"]))
@click.option("--openid", default="oDEMO0001", show_default=True)
@click.option("--scene", default=None, help="QR scene (follow, scan)")
@click.option("--text", "content", default=None, help="message text (text)")
@click.option("--key", default=None, help="menu key (click)")
@click.option("--lat", type=float, default=30.2741)
@click.option("--lng", type=float, default=120.1551)
@click.option("--url", default=None, help="server base URL (default PUBLIC_BASE_URL)")
@with_appcontext
def simulate(kind, openid, scene, content, key, lat, lng, url):
    """Send one event as the WeChat server would (signed; encrypted when WECHAT_AES_KEY is set)."""
    from wxapp.official_account.simulate import deliver, message_xml

    cfg = current_app.config
    kw = {"follow": {"scene": scene}, "unfollow": {}, "scan": {"scene": scene or ""}, "text": {"content": content or "你好"},
          "click": {"key": key or "MENU_REPAIR"}, "location": {"lat": lat, "lng": lng}}[kind]
    xml = message_xml("location_event" if kind == "location" else kind, openid, **kw)
    if cfg.get("DEV_ROUTES"):  # the sandbox plays WeChat: it knows what this user did
        from wxapp.official_account.sandbox import saw

        saw(xml)
    status, reply = deliver(url or cfg["PUBLIC_BASE_URL"], xml, cfg["WECHAT_TOKEN"] or "", aes_key=cfg.get("WECHAT_AES_KEY"),
                            appid=cfg["WECHAT_APPID"])
    click.echo(f"{kind} → {status}; 回复：{reply or '（无被动回复）'}")


@cli.command("jobs-run-due")
@with_appcontext
def jobs_run_due():
    """Embedded mode: run due delayed jobs and periodic jobs once (cron-friendly)."""
    from crm_core import jobs

    ran = jobs.run_due()
    started = jobs.tick_periodic()
    db.session.commit()
    click.echo(f"ran {ran} delayed job(s); started periodic: {', '.join(started) or 'none'}")



@cli.command("jobs-recover")
@with_appcontext
def jobs_recover():
    """After an outage: run the recovery sweeps now instead of at their next slot — spool files
    of stopped processes, held callbacks, deliveries left processing, outbox rows whose job was
    lost, lost profile checks and photo downloads."""
    from crm_core import jobs, outbox
    from wxapp.official_account import jobs as gateway_jobs

    counts = {"spool": gateway_jobs.recover_inbound_spool(), "held": gateway_jobs.recover_held_messages(),
              "outbox": outbox.sweep(), "jobs": gateway_jobs.recover_lost_jobs()}
    db.session.commit()
    jobs.wait_idle()
    click.echo("; ".join(f"{k} {v}" for k, v in counts.items()))


if __name__ == "__main__":  # pragma: no cover
    cli()
